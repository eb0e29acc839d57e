"""Status-engine benchmark: an official exposes a venue with 100,000 visitors, then sends a
100,000-row status-change batch for the same people, while a few thousand of them are
connected to /ws/me; then a registrar with 100 logbooks turns red while scans keep probing
every one of those logbooks.

    .venv/bin/python -m bench.exposure [--visitors 100000] [--clients 3000]
                                       [--database-url URL] [--web-workers 1]

Everything is real and in its own process: Redis (the embedded redis-server), uvicorn running
web.main:app, the RQ worker (`python -m workers.runner`: forks a work horse per job, as in
production), and this orchestrator with the WebSocket clients (`websockets`) and the probes.

Figures (a JSON report on stdout; progress on stderr), for the exposure and the batch:
- changes_per_second: status changes applied ÷ the job's run time (RQ started_at → ended_at);
  end_to_end_per_second: ÷ (official's request → job seen finished).
- notify: for each connected citizen (sampled across all 100,000), official's request → their
  status frame arrived; last_s is the slowest. Target: every one within 15 s, none twice.
- revocation.last_refused_ms: official's request → the last of the registrar's 100 logbooks
  answering 410 logbook_revoked to a scan. Target: under a second.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import orjson
from sqlalchemy import text
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"changes_per_second": 10_000, "last_notice_s": 15.0, "revocation_ms": 1000.0}


def log(message: str) -> None:
    print(f"[exposure {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reset_database(url: str):
    """A fresh, migrated database of the benchmark's own (never a shared one)."""
    import models.tables  # noqa: F401 - registers every table
    from bench.data import reset_schema
    from models.db import make_engine

    engine = make_engine(url)
    reset_schema(engine)
    return engine


def start(cmd: list[str], env: dict, name: str, logdir: Path) -> subprocess.Popen:
    out = open(logdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the server did not become healthy")


class Citizen:
    """One /ws/me client: connects, waits for ready, stamps every status frame on arrival."""

    def __init__(self, token: str):
        self.token = token
        self.ws = None
        self.statuses: list[float] = []
        self.frames = 0
        self.error: str | None = None
        self.task: asyncio.Task | None = None

    async def open(self, ws_url: str) -> None:
        self.ws = await connect(f"{ws_url}/ws/me", additional_headers={
            "Authorization": f"Bearer {self.token}"}, open_timeout=60, max_size=2**20)
        ready = orjson.loads(await self.ws.recv())
        assert ready["type"] == "ready", ready
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self.frames += 1
                if b'"type":"status"' in (raw if isinstance(raw, bytes) else raw.encode()):
                    self.statuses.append(time.monotonic())
        except Exception as exc:  # closed by the server: a finding
            self.error = repr(exc)


async def open_clients(ws_url: str, tokens: list[str], batch: int = 200) -> list[Citizen]:
    clients = [Citizen(t) for t in tokens]
    for i in range(0, len(clients), batch):
        await asyncio.gather(*(c.open(ws_url) for c in clients[i:i + batch]))
    return clients


async def wait_job(http: httpx.AsyncClient, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (await http.get(f"/api/admin/jobs/{job_id}")).json()
        if state.get("state") in ("finished", "failed"):
            return state
        await asyncio.sleep(0.05)
    raise SystemExit(f"job {job_id} did not finish")


def job_times(redis_url: str, job_id: str) -> tuple[float, float, float]:
    """When RQ enqueued, started and ended the job (wall clock, seconds)."""
    import redis
    from rq.job import Job
    from rq.serializers import JSONSerializer

    job = Job.fetch(job_id, connection=redis.Redis.from_url(redis_url),
                    serializer=JSONSerializer)
    return job.enqueued_at.timestamp(), job.started_at.timestamp(), job.ended_at.timestamp()


async def notify_phase(http: httpx.AsyncClient, clients: list[Citizen], redis_url: str,
                       path: str, body: dict) -> dict:
    """POST an official's request, wait for its job, then for every connected citizen's
    status frame; the figures of one phase."""
    seen = [len(c.statuses) for c in clients]
    t0 = time.monotonic()
    r = await http.post(path, json=body)
    accepted = time.monotonic()
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    state = await wait_job(http, job_id)
    t_done = time.monotonic()
    assert state["state"] == "finished", state
    result = state["result"]

    def pending() -> bool:
        return any(len(c.statuses) == n and c.error is None for c, n in zip(clients, seen,
                                                                             strict=True))

    deadline = time.monotonic() + 60
    while pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    _enqueued, started, ended = job_times(redis_url, job_id)
    delays = [c.statuses[n] - t0 for c, n in zip(clients, seen, strict=True)
              if len(c.statuses) > n]
    twice = sum(1 for c, n in zip(clients, seen, strict=True) if len(c.statuses) > n + 1)
    applied = result["applied"]
    return {
        "applied": applied, "total": result["total"], "unchanged": result["unchanged"],
        "errors": len(result["errors"]),
        "request_s": round(accepted - t0, 3),
        "job_run_s": round(ended - started, 3),
        "request_to_job_done_s": round(t_done - t0, 3),
        "changes_per_second": round(applied / (ended - started)),
        "end_to_end_per_second": round(applied / (t_done - t0)),
        "notify": {
            "connected": len(clients), "notified": len(delays), "notified_twice": twice,
            "closed_early": sum(1 for c in clients if c.error),
            "first_s": round(min(delays), 3) if delays else None,
            "p50_s": round(pct(delays, 50), 3) if delays else None,
            "p99_s": round(pct(delays, 99), 3) if delays else None,
            "last_s": round(max(delays), 3) if delays else None,
        },
    }


async def status_phases(args, data, base_url: str, ws_url: str, admin: dict,
                        redis_url: str) -> dict:
    """The exposure (everyone at the venue → yellow), then one 100,000-row status-change
    batch (everyone → red), with the same citizens connected throughout."""
    from models.timeutil import iso

    # Spread over the whole exposure, so the last one online is among the last changed.
    online = sorted(random.Random(5).sample(data.visitor_ids, args.clients))
    log(f"connecting {len(online)} /ws/me clients")
    clients = await open_clients(ws_url, [data.tokens[cid] for cid in online])
    log("all connected and ready; exposing the venue")
    async with httpx.AsyncClient(base_url=base_url, headers=admin, timeout=120) as http:
        exposure = await notify_phase(http, clients, redis_url, "/api/admin/exposures", {
            "venue_id": data.venue_id, "start": iso(data.window[0]),
            "end": iso(data.window[1]), "status": "yellow",
            "reason": "压测：场所暴露 / benchmark exposure"})
        log(f"exposure: {exposure['changes_per_second']} changes/s, last notice after "
            f"{exposure['notify']['last_s']} s; posting {len(data.id_numbers)} status changes")
        batch = await notify_phase(http, clients, redis_url, "/api/admin/status-changes", {
            "changes": [{"id_number": n, "status": "red", "reason": "压测：批量转红"}
                        for n in data.id_numbers]})
        log(f"status changes: {batch['changes_per_second']} changes/s, last notice after "
            f"{batch['notify']['last_s']} s")
    for c in clients:
        if c.task:
            c.task.cancel()
        await c.ws.close()
    return {"exposure": exposure, "status_changes": batch}


class Prober:
    """Scans one logbook over a raw keep-alive HTTP/1.1 connection (pre-built request bytes:
    an HTTP client library would spend more CPU per scan than the server does)."""

    def __init__(self, host: str, port: int, code: str, token: str):
        self.host, self.port = host, port
        body = orjson.dumps({"code": code})
        self.request = (
            f"POST /api/scan HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def scan(self) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def revocation_phase(data, base_url: str, admin: dict, redis_url: str,
                           period: float) -> dict:
    """Every one of the registrar's logbooks is probed with a scan every `period` seconds
    (staggered, so some probe lands every period / N) until it answers 410 logbook_revoked;
    the clock runs from the official's request. The figure is an upper bound: it includes up
    to one probe period of waiting."""
    host, port = base_url.removeprefix("http://").split(":")
    probers = [Prober(host, int(port), code, token)
               for code, token in zip(data.logbook_codes, data.scanner_tokens, strict=True)]
    warm = await asyncio.gather(*(p.scan() for p in probers))
    assert all(status in (200, 201) for status, _ in warm), warm[0]
    refused: dict[int, float] = {}
    answers = 0

    async def probe(i: int) -> None:
        nonlocal answers
        await asyncio.sleep(period * i / len(probers))
        while True:
            due = time.monotonic() + period
            status, body = await probers[i].scan()
            answers += 1
            if status == 410:
                assert orjson.loads(body)["error"] == "logbook_revoked", body
                refused[i] = time.monotonic()
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    probes = [asyncio.create_task(probe(i)) for i in range(len(probers))]
    await asyncio.sleep(1.0)  # the probes are in their stride before the request
    async with httpx.AsyncClient(base_url=base_url, headers=admin, timeout=30) as http:
        t0 = time.monotonic()
        wall0 = time.time()
        r = await http.post("/api/admin/status-changes", json={"changes": [
            {"id_number": data.registrar_id_number, "status": "red",
             "reason": "压测：登记员转红 / benchmark: the registrar turns red"}]})
        assert r.status_code == 202, r.text
        accepted = time.monotonic()
        done, pending = await asyncio.wait(probes, timeout=30)
        for task in pending:
            task.cancel()
        state = await wait_job(http, r.json()["job_id"])
    for p in probers:
        p.close()
    enqueued, started, ended = job_times(redis_url, r.json()["job_id"])
    delays = [(at - t0) * 1000 for at in refused.values()]
    return {
        "logbooks": len(probers), "refused": len(refused), "probe_period_ms": period * 1000,
        "request_accepted_ms": round((accepted - t0) * 1000, 1),
        "job_enqueued_ms": round((enqueued - wall0) * 1000, 1),
        "job_started_ms": round((started - wall0) * 1000, 1),
        "job_ended_ms": round((ended - wall0) * 1000, 1),
        "first_refused_ms": round(min(delays), 1) if delays else None,
        "last_refused_ms": round(max(delays), 1) if delays else None,
        "revoked_by_job": state["result"]["revoked_logbooks"],
    }


async def run(args, data, base_url, ws_url, admin, redis_url) -> dict:
    phases = await status_phases(args, data, base_url, ws_url, admin, redis_url)
    revocation = await revocation_phase(data, base_url, admin, redis_url,
                                        args.probe_period_ms / 1000)
    log(f"revocation: last scan refused {revocation['last_refused_ms']} ms after the request")
    return {**phases, "revocation": revocation}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.exposure")
    parser.add_argument("--visitors", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--logbooks", type=int, default=100)
    parser.add_argument("--database-url", default=None,
                        help="default: a SQLite file in a temporary directory")
    parser.add_argument("--web-workers", type=int, default=1)
    parser.add_argument("--probe-period-ms", type=float, default=100.0,
                        help="how often each of the registrar's logbooks is scanned")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)

    from bench.exposure_data import seed
    from realtime.embedded import start_redis, stop_redis

    tmp = Path(tempfile.mkdtemp(prefix="sb-exposure-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    procs: list[subprocess.Popen] = []
    redis_proc, redis_url = start_redis(tmp / "redis", persist=False)
    try:
        log(f"database {database_url.split('@')[-1]}; seeding {args.visitors} visitors")
        engine = reset_database(database_url)
        t = time.monotonic()
        data = seed(engine, visitors=args.visitors, logbooks=args.logbooks)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))  # production tables have statistics
        dialect = engine.dialect.name
        engine.dispose()
        log(f"seeded in {time.monotonic() - t:.1f} s")

        load_before = [round(x, 2) for x in os.getloadavg()]
        admin_token = secrets.token_urlsafe(24)
        port = free_port()
        env = {**os.environ, "SCANBOOK_ENV": "development", "DATABASE_URL": database_url,
               "REDIS_URL": redis_url, "SCANBOOK_DATA_DIR": str(tmp / "data"),
               "SCANBOOK_SECRET": secrets.token_urlsafe(24),
               "SCANBOOK_ADMIN_TOKEN": admin_token,
               "SCANBOOK_PUBLIC_URL": f"http://127.0.0.1:{port}",
               "SCANBOOK_SCAN_RATE_PER_MIN": "0"}  # the probes scan back to back
        web = start([sys.executable, "-m", "uvicorn", "web.main:app", "--host", "127.0.0.1",
                     "--port", str(port), "--workers", str(args.web_workers), "--no-access-log",
                     "--log-level", "warning", "--ws-max-size", "65536"], env, "web", tmp)
        procs.append(web)
        procs.append(start([sys.executable, "-m", "workers.runner"], env, "worker", tmp))
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(base_url, web)
        admin = {"Authorization": f"Bearer {admin_token}"}
        figures = asyncio.run(run(args, data, base_url, f"ws://127.0.0.1:{port}", admin,
                                  redis_url))
        exposure, batch = figures["exposure"], figures["status_changes"]
        revocation = figures["revocation"]
        report = {
            "benchmark": "exposure",
            "command": "python -m bench.exposure " + " ".join(argv or sys.argv[1:]),
            "database": dialect, "visitors": args.visitors, "clients": args.clients,
            "web_workers": args.web_workers, "cpus": os.cpu_count(),
            "load_average_before": load_before,
            **figures,
            "targets": TARGETS,
            "pass": {
                "changes_per_second": min(exposure["changes_per_second"],
                                          batch["changes_per_second"])
                >= TARGETS["changes_per_second"],
                "every_client_notified_in_time": all(
                    p["notify"]["notified"] == args.clients
                    and not p["notify"]["notified_twice"]
                    and (p["notify"]["last_s"] or 1e9) <= TARGETS["last_notice_s"]
                    for p in (exposure, batch)),
                "revocation_under_a_second": revocation["refused"] == args.logbooks
                and (revocation["last_refused_ms"] or 1e9) < TARGETS["revocation_ms"],
            },
        }
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return 0 if all(report["pass"].values()) else 1
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop_redis(redis_proc)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
