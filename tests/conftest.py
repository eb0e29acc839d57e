"""Test set-up: a real Redis (REDIS_URL, else the embedded one) on an isolated database, a real
database (DATABASE_URL, else SQLite) migrated by Alembic, the app with its lifespan."""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

_TMP = Path(tempfile.mkdtemp(prefix="scanbook-test-"))
TEST_REDIS_DB = 9  # an isolated Redis database, flushed around each test


def _setup_env() -> None:
    os.environ["SCANBOOK_ENV"] = "test"
    os.environ["SCANBOOK_DATA_DIR"] = str(_TMP / "data")
    os.environ["SCANBOOK_SECRET"] = "test-secret-" + "x" * 20
    os.environ["SCANBOOK_ADMIN_TOKEN"] = "test-official-token-" + "y" * 10
    os.environ["SCANBOOK_PUBLIC_URL"] = "http://testserver"
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{_TMP / 'test.db'}")
    url = os.environ.get("REDIS_URL")
    if not url:
        from realtime.embedded import start_redis, stop_redis

        proc, url = start_redis(_TMP / "redis", persist=False)
        atexit.register(stop_redis, proc)
    os.environ["REDIS_URL"] = re.sub(r"(/\d+)?$", f"/{TEST_REDIS_DB}", url.rstrip("/"), count=1)


_setup_env()

from sqlalchemy import text  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

import models.tables  # noqa: E402,F401
from models.db import make_engine  # noqa: E402
from models.idnumber import make_id_number  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from models.settings import load_settings  # noqa: E402

ADMIN = {"Authorization": "Bearer " + os.environ["SCANBOOK_ADMIN_TOKEN"]}


@pytest.fixture(scope="session")
def engine():
    eng = make_engine(load_settings().database_url)
    with eng.begin() as conn:
        if eng.dialect.name == "postgresql":
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def redis_client():
    from realtime.connection import sync_client

    client = sync_client(os.environ["REDIS_URL"])
    yield client
    client.close()


def _wipe(engine) -> None:
    tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))


@pytest.fixture(autouse=True)
def clean(engine, redis_client):
    _wipe(engine)
    redis_client.flushdb()
    from workers.context import reset

    reset()
    yield


@pytest.fixture
def app():
    from web.app import create_app

    return create_app()


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@contextmanager
def client_with(**overrides) -> Iterator[TestClient]:
    """The app with some settings changed (a tighter rate limit, say), lifespan running."""
    from web.app import create_app

    with TestClient(create_app(dataclasses.replace(load_settings(), **overrides))) as c:
        yield c


@pytest.fixture
def run_jobs(redis_client):
    """Run every queued job through a real RQ worker (SimpleWorker, burst)."""
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from workers.queues import queue

    class BurstWorker(SimpleWorker):
        # No command channel (kill-horse etc.: nothing to send to a burst worker). With
        # redis-py 8.2 stopping RQ's pub/sub thread waits out its 60-s poll, so a test that
        # runs jobs twice would stall a minute on the first worker's teardown.
        def subscribe(self) -> None:
            self.pubsub_thread = None

    def run() -> None:
        worker = BurstWorker([queue(redis_client)], connection=redis_client,
                             serializer=JSONSerializer)
        worker.work(burst=True)

    return run


class People:
    """Makes citizens through the officials' API and returns auth headers."""

    def __init__(self, client: TestClient):
        self.client = client
        self.seq = 0

    def make(self, name: str = "张三丰", *, born: date = date(1985, 3, 7), region: str = "110101"
             ) -> dict:
        self.seq += 1
        id_number = make_id_number(region, born, self.seq)
        r = self.client.post("/api/admin/citizens", headers=ADMIN,
                             json={"name": name, "id_number": id_number, "phone": "13800000000"})
        assert r.status_code == 201, r.text
        body = r.json()
        body["id_number"] = id_number
        body["headers"] = {"Authorization": f"Bearer {body['token']}"}
        return body


def add_co_registrar(client: TestClient, owner: dict, venue_id: int, co: dict) -> dict:
    """The owner invites `co` and `co` accepts: a co-registrar of the venue (docs/registrars.md).
    Returns the accepted invitation."""
    r = client.post(f"/api/venues/{venue_id}/registrars", headers=owner["headers"],
                    json={"citizen_id": co["id"]})
    assert r.status_code == 201, r.text
    r = client.post(f"/api/invitations/{r.json()['id']}/accept", headers=co["headers"])
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def people(client) -> People:
    return People(client)


class Officials:
    """Makes named officials through the API (as the bootstrap admin) and returns their
    bearer headers: `officials.make("tracer", district="朝阳区")`."""

    def __init__(self, client: TestClient):
        self.client = client

    def make(self, role: str, *, name: str | None = None, district: str | None = None) -> dict:
        body = {"name": name or f"{role}官员", "role": role}
        if district is not None:
            body["district"] = district
        r = self.client.post("/api/admin/officials", headers=ADMIN, json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        made["headers"] = {"Authorization": f"Bearer {made['token']}"}
        return made


@pytest.fixture
def officials(client) -> Officials:
    return Officials(client)


@pytest.fixture
def venue_with_logbook(client, people):
    owner = people.make("李四")
    r = client.post("/api/venues", headers=owner["headers"], json={
        "name": "望京SOHO塔1", "address": "望京街10号", "district": "朝阳区",
        "category": "office", "capacity": 200})
    assert r.status_code == 201, r.text
    venue = r.json()
    r = client.post(f"/api/venues/{venue['id']}/logbooks", headers=owner["headers"],
                    json={"label": "东门"})
    assert r.status_code == 201, r.text
    return owner, venue, r.json()
