"""Redis under Sentinel with real processes on loopback: a primary, a replica and three
Sentinels; the app (a uvicorn process) and an RQ worker process reach Redis only through
`redis+sentinel://`. The primary is killed with SIGKILL: Sentinel promotes the replica, and
scans, the registrar's live feed and RQ jobs carry on against the new primary, losing nothing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx2 as httpx
import orjson
import pytest
import redis
from websockets.sync.client import connect

from models.idnumber import make_id_number
from realtime.connection import async_client, parse_sentinel_url, sync_client
from tests.conftest import ADMIN
from tests.servers import ROOT, free_port, start_server

SERVICE = "mymaster"
# Fast failure detection so the failover fits the test budget: 1 s without an answer marks
# the primary subjectively down; two Sentinels agreeing make it objectively down.
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


def _redis_server() -> str | None:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if Path(found).is_file():
        return found
    try:
        from realtime.embedded import redis_server_binary

        return redis_server_binary()
    except ImportError:
        return None


def _wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class SentinelCluster:
    """A primary, a replica and three Sentinels, each a child process in `root`."""

    def __init__(self, root: Path, binary: str):
        self.root = root
        self.binary = binary
        self.procs: dict[str, subprocess.Popen] = {}
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _spawn(self, name: str, args: list[str]) -> None:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        self.procs[name] = subprocess.Popen(
            [self.binary, *args], cwd=d, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def _server(self, name: str, port: int, *extra: str) -> None:
        d = self.root / name
        self._spawn(name, ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
                           "--save", "", "--appendonly", "no", "--daemonize", "no",
                           "--logfile", str(d / "redis.log"), *extra])

    def start(self) -> None:
        self._server("primary", self.primary_port)
        _wait(lambda: self.node(self.primary_port).ping(), 10, "the primary")
        self._server("replica", self.replica_port,
                     "--replicaof", "127.0.0.1", str(self.primary_port))
        _wait(lambda: self.node(self.replica_port).info("replication")
              .get("master_link_status") == "up", 15, "the replica to sync")
        for i, port in enumerate(self.sentinel_ports):
            d = self.root / f"sentinel{i}"
            d.mkdir(parents=True, exist_ok=True)
            conf = d / "sentinel.conf"  # Sentinel rewrites its config: it must be a file
            conf.write_text("\n".join([
                f"port {port}", "bind 127.0.0.1", "daemonize no", f"dir {d}",
                f"logfile {d / 'sentinel.log'}",
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2",
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {SERVICE} 1", ""]))
            self._spawn(f"sentinel{i}", [str(conf), "--sentinel"])
        # Ready when every Sentinel has found the replica and the two other Sentinels
        # (they discover each other through hello messages on the primary, every 2 s).
        for port in self.sentinel_ports:
            _wait(lambda p=port: self._knows_all(p), 20, f"Sentinel {port} to see the cluster",
                  interval=0.2)

    def _knows_all(self, port: int) -> bool:
        state = self.node(port).sentinel_master(SERVICE)
        return int(state["num-other-sentinels"]) == 2 and int(state["num-slaves"]) == 1

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)

    def master_port(self) -> int | None:
        for port in self.sentinel_ports:
            try:
                addr = self.node(port).sentinel_get_master_addr_by_name(SERVICE)
            except (redis.RedisError, OSError):
                continue
            if addr:
                return int(addr[1])
        return None

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait(10)


@pytest.fixture
def cluster(tmp_path):
    binary = _redis_server()
    if binary is None:
        pytest.skip("no redis-server binary to run Sentinel with")
    c = SentinelCluster(tmp_path, binary)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_sentinel_url_parsing():
    spec = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2,[::1]:26380"
                              "/mymaster/3?sentinel_password=pw")
    assert spec["sentinels"] == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)]
    assert (spec["service"], spec["db"]) == ("mymaster", 3)
    assert (spec["username"], spec["password"]) == (None, "s3cret")
    assert spec["sentinel_password"] == "pw"
    assert not spec["ssl"]
    assert parse_sentinel_url("rediss+sentinel://h/svc")["ssl"]
    assert parse_sentinel_url("redis+sentinel://h/svc")["db"] == 0
    for bad in ("redis+sentinel://h", "redis+sentinel:///svc", "redis+sentinel://h/svc/x"):
        with pytest.raises(ValueError):
            parse_sentinel_url(bad)


def test_clients_follow_a_failover(cluster):
    """The sync client, the asyncio client and an RQ worker's connection all find the new
    primary by themselves after the old one is killed."""
    import asyncio

    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from workers.queues import enqueue, job_state, queue

    client = sync_client(cluster.url, socket_timeout=2, socket_connect_timeout=1)
    try:
        client.set("before", "1")
        assert client.connection_pool.get_master_address()[1] == cluster.primary_port
        _wait(lambda: cluster.node(cluster.replica_port).get("before") == b"1", 5, "replication")
        cluster.kill("primary")
        _wait(lambda: cluster.master_port() == cluster.replica_port, 30, "the failover", 0.2)
        assert _wait(lambda: client.set("after", "1"), 10, "a write on the new primary")
        assert client.get("before") == b"1"
        assert client.connection_pool.get_master_address()[1] == cluster.replica_port

        job = enqueue(client, "builtins.len", "four")
        SimpleWorker([queue(client)], connection=client, serializer=JSONSerializer
                     ).work(burst=True)
        assert job_state(client, job.id)["result"] == 4

        async def on_async() -> bytes | None:
            aclient = async_client(cluster.url)
            try:
                return await aclient.get("after")
            finally:
                await aclient.aclose()

        assert asyncio.run(on_async()) == b"1"
    finally:
        client.close()


# --- the whole system through a failover ---------------------------------------------------


def _citizen(http: httpx.Client, name: str, seq: int) -> dict:
    id_number = make_id_number("110105", date(1982, 1 + seq % 12, 1 + seq % 28), seq)
    r = http.post("/api/admin/citizens", headers=ADMIN,
                  json={"name": name, "id_number": id_number})
    assert r.status_code == 201, r.text
    return {"Authorization": "Bearer " + r.json()["token"], "id_number": id_number}


def _recv(ws, timeout: float) -> dict:
    return orjson.loads(ws.recv(timeout=timeout))


def _scan(http: httpx.Client, guest: dict, code: str, deadline: float) -> int:
    """POST /api/scan, retrying while a dependency answers 503 (it never should for long)."""
    headers = {"Authorization": guest["Authorization"]}
    while True:
        r = http.post("/api/scan", headers=headers, json={"code": code})
        if r.status_code in (200, 201):
            return r.json()["checkin_id"]
        assert r.status_code == 503 and time.monotonic() < deadline, r.text
        time.sleep(0.2)


def _start_worker(env: dict, log: Path) -> subprocess.Popen:
    import os

    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)


def test_failover_loses_no_checkin_and_jobs_carry_on(engine, cluster, tmp_path):
    env = {"REDIS_URL": cluster.url}
    server = start_server(env=env)
    worker_log = tmp_path / "worker.log"
    worker = _start_worker(env, worker_log)
    try:
        # The worker must be listening on the first primary before it is killed.
        probe = sync_client(cluster.url)
        try:
            _wait(lambda: probe.scard("rq:workers"), 30, "the RQ worker to register", 0.1)
        finally:
            probe.close()
        with httpx.Client(base_url=server.url, timeout=15) as http:
            owner = _citizen(http, "李四", 1)
            owner_h = {"Authorization": owner["Authorization"]}
            venue = http.post("/api/venues", headers=owner_h, json={
                "name": "朝阳大悦城", "address": "朝阳北路101号", "district": "朝阳区",
                "category": "mall"}).json()
            book = http.post(f"/api/venues/{venue['id']}/logbooks", headers=owner_h,
                             json={"label": "北门"}).json()
            guests = [_citizen(http, f"访客{i}", 10 + i) for i in range(30)]

            feed_url = f"{server.ws_url}/ws/venues/{venue['id']}/feed"
            with connect(feed_url, additional_headers=owner_h, open_timeout=10) as ws:
                assert _recv(ws, 10)["type"] == "ready"
                accepted = [_scan(http, guests[0], book["token"], time.monotonic() + 10)]
                assert _recv(ws, 5)["id"] == accepted[0]  # live through the first primary

                seen: list[int] = [accepted[0]]
                done = threading.Event()

                def registrar() -> None:
                    while not done.is_set():
                        try:
                            event = _recv(ws, 0.5)
                        except TimeoutError:
                            continue
                        if event["type"] == "checkin":
                            seen.append(event["id"])

                reader = threading.Thread(target=registrar, daemon=True)
                reader.start()

                cluster.kill("primary")
                t_kill = time.monotonic()
                # Scans go on while there is no primary: the database takes them, the
                # publish fails, and the hub resyncs the feed once it reaches the new one.
                for guest in guests[1:15]:
                    accepted.append(_scan(http, guest, book["token"], t_kill + 30))
                _wait(lambda: cluster.master_port() == cluster.replica_port, 30,
                      "Sentinel to promote the replica", 0.2)
                failover_s = time.monotonic() - t_kill
                for guest in guests[15:]:
                    accepted.append(_scan(http, guest, book["token"], t_kill + 45))

                _wait(lambda: set(accepted) <= set(seen), 20,
                      "every check-in to reach the registrar's feed", 0.1)
                done.set()
                reader.join(5)
            assert len(accepted) == 30 and len(set(accepted)) == 30
            assert sorted(seen) == seen, "the feed went out of order"
            assert len(seen) == len(set(seen)), "the feed repeated a check-in"
            assert set(seen) == set(accepted)

            # A fresh registrar connection is live on the new primary straight away.
            with connect(feed_url + f"?after={max(accepted)}", additional_headers=owner_h,
                         open_timeout=10) as ws2:
                assert _recv(ws2, 10)["type"] == "ready"
                extra = _citizen(http, "王五", 99)
                cid = _scan(http, extra, book["token"], time.monotonic() + 10)
                event = _recv(ws2, 5)
                assert (event["type"], event["id"]) == ("checkin", cid)

            # RQ: the worker process started before the failover takes a job after it.
            r = http.post("/api/admin/status-changes", headers=ADMIN, json={"changes": [
                {"id_number": guests[3]["id_number"], "status": "yellow",
                 "reason": "密接 close contact"}]})
            assert r.status_code == 202, r.text
            job_id = r.json()["job_id"]

            def finished() -> dict | None:
                state = http.get(f"/api/admin/jobs/{job_id}", headers=ADMIN).json()
                assert state["state"] != "failed", state
                return state if state["state"] == "finished" else None

            try:
                _wait(finished, 30, "the status-change job on the new primary", 0.2)
            except AssertionError:
                print(worker_log.read_text()[-5000:])  # shown by pytest on failure
                raise
            me = http.get("/api/me", headers={"Authorization": guests[3]["Authorization"]})
            assert me.json()["status"] == "yellow"
            assert http.get("/healthz").status_code == 200
        assert failover_s < 30
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        server.stop()
