"""Every long-lived Redis client the project makes has the timeouts docs/redis-clients.md
gives it (the worker's are in tests/workers/test_runner.py)."""

from __future__ import annotations

import os

from ingest.limits import TIMEOUT as LIMIT_TIMEOUT
from ingest.limits import connect_sync
from ingest.process import PUBLISH_TIMEOUT, publish_client
from realtime import hub as hub_module
from web.ratelimit import connect as connect_limiter
from workers.context import JOB_REDIS_TIMEOUT, resources


def _kwargs(client) -> dict:
    return client.connection_pool.connection_kwargs


def test_the_web_process_clients(client):
    state = client.app.state
    assert (_kwargs(state.redis)["socket_timeout"], _kwargs(state.redis)["socket_connect_timeout"]
            ) == (5, 2)
    listener = _kwargs(state.hub._client)
    assert listener["socket_timeout"] == hub_module.REDIS_TIMEOUT
    assert listener["socket_connect_timeout"] == hub_module.CONNECT_TIMEOUT
    assert state.hub._pubsub.connection.health_check_interval == hub_module.HEALTH_CHECK_SECONDS
    assert _kwargs(state.limiter.client)["socket_timeout"] == LIMIT_TIMEOUT


def test_the_writer_limiter_and_job_clients():
    url = os.environ["REDIS_URL"]
    for make, timeout in ((publish_client, PUBLISH_TIMEOUT), (connect_sync, LIMIT_TIMEOUT)):
        made = make(url)
        assert (_kwargs(made)["socket_timeout"], _kwargs(made)["socket_connect_timeout"]) == (
            timeout, timeout)
        made.close()
    limiter = connect_limiter(url)
    assert _kwargs(limiter)["socket_timeout"] == LIMIT_TIMEOUT
    _settings, _engine, job_client, _lock = resources()
    assert (_kwargs(job_client)["socket_timeout"], _kwargs(job_client)["socket_connect_timeout"]
            ) == (JOB_REDIS_TIMEOUT, JOB_REDIS_TIMEOUT)
