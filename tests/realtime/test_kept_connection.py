"""KeptConnection: the check-in writer's PUBLISHes and rate-limit counts go over one kept
connection; one made while Redis is down works once Redis is up, and again after a restart."""

from __future__ import annotations

import os
import uuid

from ingest.limits import ScanCounter
from models.checkins import CheckinRequest
from realtime.connection import KeptConnection, sync_client
from realtime.embedded import start_redis, stop_redis
from realtime.events import publish
from tests.servers import free_port


def test_publishes_and_counts_work_over_one_kept_connection_each(redis_client):
    name = f"kept-{uuid.uuid4().hex[:8]}"
    publisher = KeptConnection(sync_client(os.environ["REDIS_URL"], client_name=name))
    counter = ScanCounter(KeptConnection(sync_client(os.environ["REDIS_URL"],
                                                     client_name=name)))
    try:
        for i in range(20):
            assert publish(publisher, [("sb:test:kept", {"n": i})])
            with counter.send([CheckinRequest(citizen_id=i, code="x", limit=5)]) as verdicts:
                assert verdicts() == {}
        mine = [c for c in redis_client.client_list() if c["name"] == name]
        assert len(mine) == 2  # one each, kept: not a new one a call
    finally:
        publisher.close()
        counter.client.close()


def test_made_while_redis_is_down_it_works_once_redis_is_up_and_after_a_restart(tmp_path):
    port = free_port()
    kept = KeptConnection(sync_client(f"redis://127.0.0.1:{port}/0", socket_timeout=1,
                                      socket_connect_timeout=0.2))
    event = [("sb:test:kept", {"n": 1})]
    assert publish(kept, event) is False  # nothing listening yet: refused, not raised
    proc, _ = start_redis(tmp_path / "redis", port, persist=False)
    try:
        assert publish(kept, event) is True
        stop_redis(proc)
        proc, _ = start_redis(tmp_path / "redis", port, persist=False)
        assert publish(kept, event) is True  # the broken connection was remade
    finally:
        kept.close()
        stop_redis(proc)
