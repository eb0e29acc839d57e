"""Idle WebSocket connections on ONE server process: memory per idle connection, and how long
one announcement takes to reach every one of them.

    .venv/bin/python -m bench.connections [--connections 10000] [--clients 4] [--feed me|venue]
        [--ws websockets|websockets-sansio|wsproto] [--rounds 3] [--database-url URL]

Every connection is a citizen's /ws/me (distinct citizens, bearer tokens), and the
announcement is POST /api/admin/notices; with `--feed venue` every connection is a registrar
feed of one venue and the "announcement" is one scan at that venue. The clients run in
`--clients` processes of their own (one process's event loop cannot open 10,000 connections
and stamp 10,000 frames quickly enough), on the same machine: arrival times are
time.monotonic(), CLOCK_MONOTONIC, one clock for every process.

Memory per idle connection = (server RSS with every connection idle − RSS before) / count,
after a warm-up round of a few connections, so that imports and first-use caches are not
counted. Targets: ≤ 30 KB per idle connection, every connection within 1 s.

A JSON report goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
TARGET_KB = 30
TARGET_SECONDS = 1.0
ADMIN_TOKEN = "bench-official-token-" + "z" * 12


def log(message: str) -> None:
    print(f"[connections {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_nofile(need: int) -> int:
    """Raise this process's open-file limit (children inherit it) as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


# ---------------------------------------------------------------------------------------------
# Client process: opens its share of the connections, reports READY, then stamps the arrival
# of the first event of `--wait-type` on each connection, once per round (a line on stdin
# starts a round: "<round number>").


async def _client_main(args) -> None:
    from websockets.asyncio.client import connect

    tokens = orjson.loads(Path(args.tokens).read_bytes())[args.start:args.start + args.count]
    conns: list = [None] * len(tokens)
    failures: list[str] = []
    gate = asyncio.Semaphore(args.parallel)

    async def open_one(i: int, token: str) -> None:
        async with gate:
            for attempt in range(3):
                try:
                    ws = await connect(f"{args.ws_url}{args.path}",
                                       additional_headers={"Authorization": f"Bearer {token}"},
                                       ping_interval=None, max_queue=4, open_timeout=60,
                                       compression=None)
                    while orjson.loads(await asyncio.wait_for(ws.recv(), 60))["type"] != "ready":
                        pass
                    conns[i] = ws
                    return
                except Exception as exc:  # retried; reported if it keeps failing
                    if attempt == 2:
                        failures.append(repr(exc))
                    await asyncio.sleep(0.5)

    await asyncio.gather(*(open_one(i, t) for i, t in enumerate(tokens)))
    live = [ws for ws in conns if ws is not None]
    print(json.dumps({"ready": len(live), "failed": len(failures),
                      "errors": failures[:3]}), flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def first_of_type(ws) -> float | None:
        try:
            while True:
                raw = await ws.recv()
                stamp = time.monotonic()
                if orjson.loads(raw).get("type") == args.wait_type:
                    return stamp
        except Exception:
            return None

    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            break
        tasks = [asyncio.create_task(first_of_type(ws)) for ws in live]
        done, pending = await asyncio.wait(tasks, timeout=args.round_timeout)
        for task in pending:
            task.cancel()
        stamps = [t.result() if t in done else None for t in tasks]
        print(json.dumps({"stamps": stamps}), flush=True)
    for ws in live:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.close(), 2)


# ---------------------------------------------------------------------------------------------
# Orchestrator


class Client:
    def __init__(self, args, ws_url: str, path: str, tokens_file: Path, start: int, count: int,
                 wait_type: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.connections", "--client", "--ws-url", ws_url,
             "--path", path, "--tokens", str(tokens_file), "--start", str(start),
             "--count", str(count), "--wait-type", wait_type,
             "--parallel", str(args.parallel), "--round-timeout", str(args.round_timeout)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("a client process died; see stderr")
        return json.loads(line)

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.send("stop")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _post(url: str, path: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(f"{url}{path}", data=orjson.dumps(body), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return orjson.loads(r.read())


def _rss(pid: int) -> int:
    import psutil

    return psutil.Process(pid).memory_info().rss


def _settle(pid: int, seconds: float = 3.0) -> int:
    """RSS once it stops moving (connections idle, allocator settled)."""
    last, stable_since = _rss(pid), time.monotonic()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _rss(pid)
        if abs(now - last) > 256 * 1024:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= seconds:
            break
    return _rss(pid)


def _start_server(args, env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    flags = ["--workers", "1", "--loop", "uvloop", "--http", "httptools", "--no-access-log",
             "--log-level", "warning", "--ws-max-size", "65536", "--backlog", "4096"]
    if args.ws:
        flags += ["--ws", args.ws]
    log_file = open(log_path, "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "web.main:app", "--host",
                             "127.0.0.1", "--port", str(port), *flags],
                            cwd=ROOT, env={**os.environ, **env}, stdout=log_file,
                            stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"server did not start; see {log_path}")
        time.sleep(0.1)


def _round(clients: list[Client], url: str, args, round_no: int, trigger) -> dict:
    for c in clients:
        c.send(str(round_no))
    time.sleep(0.5)  # every client is waiting before the event goes out
    t0 = time.monotonic()
    trigger()
    posted = time.monotonic() - t0
    stamps = [s for c in clients for s in c.read()["stamps"]]
    got = [s - t0 for s in stamps if s is not None]
    return {
        "round": round_no,
        "connections": len(stamps),
        "received": len(got),
        "missing": len(stamps) - len(got),
        "trigger_request_ms": round(posted * 1000, 1),
        "p50_ms": round(pct(got, 50) * 1000, 1) if got else None,
        "p99_ms": round(pct(got, 99) * 1000, 1) if got else None,
        "max_ms": round(max(got) * 1000, 1) if got else None,
        "all_within_1s": len(got) == len(stamps) and max(got) <= TARGET_SECONDS,
    }


def bench(args) -> dict:
    from bench.data import reset_schema, seed
    from models.db import make_engine
    from realtime.embedded import start_redis, stop_redis

    limit = raise_nofile(args.connections + 2048)
    if limit < args.connections + 512:
        raise SystemExit(f"open-file limit {limit} is too low for {args.connections} "
                         "connections (raise the hard limit: ulimit -Hn)")
    work = Path(tempfile.mkdtemp(prefix="sb-connections-"))
    redis_proc, redis_url = start_redis(work / "redis", persist=False)
    database_url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    clients: list[Client] = []
    server = None
    try:
        engine = make_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        reset_schema(engine)
        venue_mode = args.feed == "venue"
        log(f"seeding {args.connections} citizens")
        data = seed(engine, citizens=args.rounds + 2 if venue_mode
                    else args.connections + args.warmup,
                    venues=1, logbooks_per_venue=1, feeds_per_venue=1)
        engine.dispose()
        if venue_mode:
            venue_id = data.venue_ids[0]
            tokens = data.feed_tokens[venue_id] * (args.connections + args.warmup)
            path, wait_type = f"/ws/venues/{venue_id}/feed", "checkin"
        else:
            tokens = data.visitor_tokens
            path, wait_type = "/ws/me", "notice"
        tokens_file = work / "tokens.json"
        tokens_file.write_bytes(orjson.dumps(tokens))

        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "SCANBOOK_DATA_DIR": str(work / "data"), "SCANBOOK_ADMIN_TOKEN": ADMIN_TOKEN,
               "SCANBOOK_SECRET": "bench-secret-" + "s" * 20, "SCANBOOK_ENV": "development",
               # one visitor scans many times in venue mode: no per-citizen limit here
               "SCANBOOK_SCAN_RATE_PER_MIN": "0"}
        server, url = _start_server(args, env, work / "server.log")
        ws_url = url.replace("http://", "ws://")
        scans = iter(data.visitor_tokens)

        def trigger() -> None:
            if venue_mode:
                _post(url, "/api/scan", {"code": data.codes[0]}, next(scans))
            else:
                _post(url, "/api/admin/notices", {"text": "压测公告 / benchmark notice"},
                      ADMIN_TOKEN)

        # Warm-up: a few connections and one event, so first-use costs are not counted.
        warm = Client(args, ws_url, path, tokens_file, args.connections, args.warmup, wait_type)
        assert warm.read()["ready"] == args.warmup
        warm_round = _round([warm], url, args, 0, trigger)
        warm.stop()
        gc.collect()
        before = _settle(server.pid)
        log(f"server RSS before: {before / 2**20:.1f} MiB; opening {args.connections} "
            f"connections from {args.clients} processes")

        t_open = time.monotonic()
        share = -(-args.connections // args.clients)
        for i in range(args.clients):
            count = min(share, args.connections - i * share)
            clients.append(Client(args, ws_url, path, tokens_file, i * share, count, wait_type))
        opened = [c.read() for c in clients]
        open_seconds = time.monotonic() - t_open
        ready = sum(o["ready"] for o in opened)
        log(f"{ready} connections ready in {open_seconds:.1f} s "
            f"({sum(o['failed'] for o in opened)} failed)")
        after = _settle(server.pid)
        per_conn = (after - before) / max(ready, 1)
        log(f"server RSS idle: {after / 2**20:.1f} MiB → {per_conn / 1024:.1f} KiB/connection")

        rounds = []
        for r in range(1, args.rounds + 1):
            rounds.append(_round(clients, url, args, r, trigger))
            log(f"round {r}: {rounds[-1]}")
        worst = max((x["max_ms"] or 1e9) for x in rounds)
        return {
            "benchmark": "connections",
            "feed": "/ws/me + POST /api/admin/notices" if not venue_mode
            else "/ws/venues/{id}/feed + POST /api/scan",
            "uvicorn_ws": args.ws or "auto",
            "database": "postgresql" if database_url.startswith("postgres") else "sqlite",
            "machine": {"cpus": os.cpu_count(), "nofile": limit},
            "connections": {"requested": args.connections, "ready": ready,
                            "failed": sum(o["failed"] for o in opened),
                            "errors": [e for o in opened for e in o["errors"]][:3],
                            "client_processes": args.clients,
                            "open_seconds": round(open_seconds, 1)},
            "memory": {"server_rss_before_mib": round(before / 2**20, 1),
                       "server_rss_idle_mib": round(after / 2**20, 1),
                       "per_idle_connection_kib": round(per_conn / 1024, 1),
                       "target_kib": TARGET_KB, "met": per_conn / 1024 <= TARGET_KB},
            "warmup_round": warm_round,
            "announcement": {"rounds": rounds, "target_ms": TARGET_SECONDS * 1000,
                             "worst_max_ms": worst,
                             "met": all(x["all_within_1s"] for x in rounds)},
        }
    finally:
        for c in clients:
            c.stop()
        if server is not None and server.poll() is None:
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
        stop_redis(redis_proc)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.connections", description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4, help="client processes")
    parser.add_argument("--feed", choices=("me", "venue"), default="me")
    parser.add_argument("--ws", default=None,
                        help="uvicorn --ws implementation (websockets, websockets-sansio, "
                             "wsproto); default: uvicorn's choice")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=100,
                        help="handshakes in flight per client process")
    parser.add_argument("--round-timeout", type=float, default=15.0)
    parser.add_argument("--database-url", default=None,
                        help="default: a fresh SQLite file; a PostgreSQL database is WIPED")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs)")
    # client-process mode (internal)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ws-url", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--wait-type", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        try:
            import uvloop

            uvloop.install()
        except ImportError:  # pragma: no cover
            pass
        asyncio.run(_client_main(args))
        return
    report = bench(args)
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
