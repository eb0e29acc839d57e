"""Scan benchmark: POST /api/scan at the maximum rate and at a fixed rate, registrar feeds
connected, against a thin reference (parse JSON + Redis PUBLISH) measured in the same run.

    .venv/bin/python -m bench.scan [--duration S] [--db sqlite|postgres] [--database-url URL]

Prints a JSON report on stdout (also saved under bench/results/); progress goes to stderr.
See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import orjson
from sqlalchemy import text

from bench.data import BenchData, reset_schema, seed
from bench.feeds import Feed, close_feeds, open_feeds, wait_for_ids
from models.db import make_engine
from web.cli import UVICORN_FLAGS as WEB_FLAGS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# Both servers: one worker, uvloop. Scanbook runs as `scanbook serve` and the Procfile run it
# (web.cli.UVICORN_FLAGS: its own HTTP and WebSocket protocols, web/protocols.py); the thin
# reference runs uvicorn's stock httptools protocol, what any endpoint on this stack gets.
_COMMON = ["--workers", "1", "--loop", "uvloop", "--log-level", "warning"]
UVICORN_FLAGS = [*_COMMON, *WEB_FLAGS]
REFERENCE_FLAGS = [*_COMMON, "--http", "httptools", "--no-access-log"]
TARGET_RATIO = 1.0  # issue 18: at least the thin reference's rate
TARGET_FEED_P99_MS = 20.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A uvicorn process serving `target` on a free loopback port."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path,
                 flags: list[str] = UVICORN_FLAGS):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port",
             str(self.port), *flags],
            cwd=ROOT, env={**os.environ, **env}, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"{target} did not start; see {log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) each process has used so far; "bench" is this process
    (the feed clients). For the server also its loop thread, its child processes (Scanbook's
    check-in writer, and the fork server it comes from) and "server_total", both together:
    the server's cost is its own CPU and its children's."""
    out = {"bench": time.process_time()}
    tick = os.sysconf("SC_CLK_TCK")
    for name, pid in pids.items():
        try:
            out[name] = _cpu(Path(f"/proc/{pid}/stat"), tick)
            if name == "server":  # the event loop's thread (the rest: thread pool)
                out["server_loop_thread"] = _cpu(Path(f"/proc/{pid}/task/{pid}/stat"), tick)
                children = 0.0
                for child in _descendants(pid):
                    with contextlib.suppress(OSError, IndexError, ValueError):
                        children += _cpu(Path(f"/proc/{child}/stat"), tick)
                out["server_children"] = children
                out["server_total"] = out["server"] + children
        except (OSError, IndexError, ValueError):
            pass
    return out


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{parent}/task/{task}/children")
                        .read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def _cpu(stat: Path, tick: int) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def runqueue_seconds(pids: dict[str, int]) -> dict[str, float]:
    """Seconds the watched processes' threads have spent runnable but waiting for a core
    (Linux schedstat), as cpu_seconds names them: the server's loop thread, its children
    (the check-in writer), Redis. A share of the wall time that is not small means the
    processes queue for the two cores, and every wait is latency."""
    out = {}
    for name, pid in pids.items():
        if name == "server":
            out["server_loop_thread"] = _waited(pid, [pid])
            out["server_children"] = sum(_waited(child) for child in _descendants(pid))
        else:
            out[name] = _waited(pid)
    return out


def _waited(pid: int, tids: list | None = None) -> float:
    total = 0
    with contextlib.suppress(OSError):
        for tid in tids or os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1])
    return total / 1e9


def writer_counters(url: str) -> dict[str, float]:
    """The check-in writer's batches and rows so far, from the app's /metrics."""
    out = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            name, _, value = line.partition(" ")
            if name in ("scanbook_checkin_batches", "scanbook_checkins_written"):
                out[name] = float(value)
    return out


async def run_loadgen(workdir: Path, name: str, spec: dict, watch: dict[str, int],
                      profile: list[str] | None = None, metrics_url: str | None = None,
                      profile_phase: str = "max") -> dict:
    """The load generator in its own process; returns its per-phase results. With `profile`
    (a py-spy command), the profiler starts when `profile_phase` does."""
    spec_path, out_path = workdir / f"{name}.spec.json", workdir / f"{name}.out.json"
    spec_path.write_bytes(orjson.dumps(spec))
    # The feed clients stamp every frame in this process, so no collection while the load
    # runs: with a million frames kept, two collections in the fixed phase's first second
    # took 45 and 30 ms and stamped every frame in flight that much late, at once (that
    # second's p99 was 38-48 ms in every run, the others' 8-19). The garbage of the phases
    # before is collected now; the frames themselves make no cycles.
    gc.collect()
    gc.disable()
    try:
        return await _run_loadgen(name, spec_path, out_path, watch, profile, metrics_url,
                                  profile_phase)
    finally:
        gc.enable()


async def _run_loadgen(name: str, spec_path: Path, out_path: Path, watch: dict[str, int],
                       profile: list[str] | None, metrics_url: str | None,
                       profile_phase: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", str(spec_path), str(out_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE)
    profiler = None
    marks: dict[str, tuple[float, dict[str, float]]] = {}
    cpu: dict[str, dict[str, float]] = {}
    waits: dict[str, dict[str, float]] = {}
    counters: dict[str, dict[str, float]] = {}
    writer: dict[str, dict] = {}
    async for line in proc.stdout:
        what, _, phase = line.decode().strip().partition(" ")
        if what == "phase":
            if metrics_url:
                counters[phase] = await asyncio.to_thread(writer_counters, metrics_url)
            marks[phase] = (time.monotonic(), cpu_seconds(watch), runqueue_seconds(watch))
            if profile and phase == profile_phase and profiler is None:
                profiler = await asyncio.create_subprocess_exec(
                    *profile, stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL)
        elif what == "end" and phase in marks:
            started, before, waited = marks[phase]
            elapsed, after = time.monotonic() - started, cpu_seconds(watch)
            cpu[phase] = {k: round((after[k] - before[k]) / elapsed, 3) for k in after}
            waits[phase] = {k: round((v - waited[k]) / elapsed, 3)
                            for k, v in runqueue_seconds(watch).items()}
            if metrics_url:
                now = await asyncio.to_thread(writer_counters, metrics_url)
                batches = now["scanbook_checkin_batches"] - counters[phase][
                    "scanbook_checkin_batches"]
                rows = now["scanbook_checkins_written"] - counters[phase][
                    "scanbook_checkins_written"]
                writer[phase] = {"batches": int(batches),
                                 "rows_per_batch": round(rows / batches, 1) if batches else None}
    if await proc.wait() != 0:
        raise SystemExit(f"load generator failed ({name})")
    if profiler is not None:
        await profiler.wait()
        log(f"profile of the max phase: {profile[-1]}")
    out = orjson.loads(out_path.read_bytes())
    for p in out["phases"]:
        p["cpu"] = {**cpu.get(p["name"], {}), "loadgen": p["loadgen_cpu"]}
        p["runqueue_wait"] = waits.get(p["name"])
        if p["name"] in writer:
            p["writer"] = writer[p["name"]]
    return out


def _accepted(phase: dict) -> float:
    return phase["by_status"].get("201", 0) / phase["duration_s"]


def merge(phases: list[dict]) -> dict:
    """Rounds of the same phase as one: answers concatenated, durations and counts summed."""
    out = {**phases[0], "due": [], "done": [], "status": [], "ids": []}
    total = sum(p["duration_s"] for p in phases)
    by_status: dict[str, int] = {}
    for p in phases:
        for key in ("due", "done", "status", "ids"):
            out[key] += p[key]
        for k, v in p["by_status"].items():
            by_status[k] = by_status.get(k, 0) + v
    out.update(duration_s=round(total, 3), by_status=by_status,
               answered=sum(p["answered"] for p in phases),
               errors=sum(p["errors"] for p in phases),
               rate=sum(p["answered"] for p in phases) / total)
    for key in ("cpu", "runqueue_wait"):  # time-weighted means of each process's shares
        shares: dict[str, float] = {}
        for p in phases:
            for k, v in (p.get(key) or {}).items():
                shares[k] = shares.get(k, 0.0) + v * p["duration_s"] / total
        out[key] = {k: round(v, 3) for k, v in shares.items()}
    batches = sum(p["writer"]["batches"] for p in phases if p.get("writer"))
    rows = sum(p["writer"]["batches"] * (p["writer"]["rows_per_batch"] or 0)
               for p in phases if p.get("writer"))
    out["writer"] = ({"batches": batches, "rows_per_batch": round(rows / batches, 1)}
                     if batches else None)
    return out


def http_summary(phase: dict) -> dict:
    latencies = [d - s for s, d in zip(phase["due"], phase["done"], strict=True)]
    by_status = phase["by_status"]
    accepted = by_status.get("201", 0)
    cpu = phase.get("cpu") or {}
    server_cpu = cpu.get("server_total", cpu.get("server"))
    return {
        "mode": phase["mode"],
        "connections": phase["connections"],
        "target_rate": phase["target_rate"],
        "duration_s": phase["duration_s"],
        "answered": phase["answered"],
        "by_status": by_status,
        "errors": phase["errors"],
        "answers_per_s": round(phase["rate"], 1),
        "accepted_per_s": round(accepted / phase["duration_s"], 1),
        "http_p50_ms": ms(pct(latencies, 50)),
        "http_p99_ms": ms(pct(latencies, 99)),
        "http_max_ms": ms(max(latencies, default=None)),
        "cpu_cores": phase.get("cpu"),
        "runqueue_wait": phase.get("runqueue_wait"),
        # CPU the server spent per answer, its child processes' included (Scanbook's check-in
        # writer): steadier than rates on a shared machine
        "server_cpu_us_per_answer": round(server_cpu * 1e6 / phase["rate"], 1)
        if server_cpu and phase["rate"] else None,
        "writer": phase.get("writer"),
    }


def feed_summary(phase: dict, feeds: list[Feed], arrivals: list[dict[int, list[float]]],
                 venue_of: dict[int, int]) -> dict:
    """Match the phase's 201 answers against what every feed of the venue showed."""
    feeds_of: dict[int, list[int]] = {}
    for i, feed in enumerate(feeds):
        feeds_of.setdefault(feed.venue_id, []).append(i)
    lost = lost_ids = 0
    latencies = []
    by_second: dict[int, list[float]] = {}  # when the scan was due, whole seconds in
    start = min(phase["due"], default=0.0)
    for due, status, checkin_id in zip(phase["due"], phase["status"], phase["ids"], strict=True):
        if status != 201 or checkin_id < 0:
            continue
        missing = False
        for i in feeds_of.get(venue_of.get(checkin_id, -1), []):
            seen = arrivals[i].get(checkin_id)
            if seen is None:
                lost += 1
                missing = True
            else:
                latencies.append(seen[0] - due)
                by_second.setdefault(int(due - start), []).append(seen[0] - due)
        lost_ids += missing
    return {"scan_feed_p50_ms": ms(pct(latencies, 50)),
            "scan_feed_p99_ms": ms(pct(latencies, 99)),
            "scan_feed_max_ms": ms(max(latencies, default=None)),
            # Is a bad p99 one stall or the whole phase? The p99 of each second.
            "scan_feed_p99_ms_by_second": [ms(pct(by_second[s], 99)) for s in sorted(by_second)],
            "feed_deliveries": len(latencies), "lost": lost, "lost_ids": lost_ids}


def feed_integrity(feeds: list[Feed]) -> tuple[list[dict[int, list[float]]], dict]:
    """Per feed: id → arrival times (twice = duplicated); ids must only increase."""
    arrivals, duplicated, out_of_order, closed = [], 0, 0, []
    for feed in feeds:
        seen: dict[int, list[float]] = {}
        last = 0
        for checkin_id, stamp in feed.checkins():
            if checkin_id in seen:
                duplicated += 1
            seen.setdefault(checkin_id, []).append(stamp)
            if checkin_id <= last:
                out_of_order += 1
            last = max(last, checkin_id)
        arrivals.append(seen)
        if feed.closed_early:
            closed.append(f"venue {feed.venue_id} feed {feed.index}: {feed.closed_early}")
    return arrivals, {"duplicated": duplicated, "out_of_order": out_of_order,
                      "feeds_closed_early": closed}


def loadgen_spec(server: Server, data: BenchData, args, phases: list[dict], seq: int) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "path": "/api/scan",
            "tokens": data.visitor_tokens, "codes": data.codes, "seq": seq, "phases": phases}


async def bench(args) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="scanbook-bench-"))
    redis_proc = None
    try:
        redis_url = os.environ.get("REDIS_URL")
        if not redis_url:
            from realtime.embedded import start_redis

            redis_proc, redis_url = start_redis(workdir / "redis", persist=False)
        database_url = args.database_url or (
            "postgresql+psycopg://postgres@127.0.0.1/sb_bench" if args.db == "postgres"
            else f"sqlite:///{workdir / 'data' / 'scanbook.db'}")
        # Secrets of the run, in this process too: the data written here (ID numbers are
        # encrypted at rest) must read back in the server with the same keys.
        secrets_env = {"SCANBOOK_SECRET": "bench-secret-" + base64.b64encode(os.urandom(18))
                       .decode(), "SCANBOOK_DATA_KEY": base64.b64encode(os.urandom(32)).decode(),
                       "SCANBOOK_ADMIN_TOKEN": "bench-official-" + "y" * 24}
        os.environ.update(secrets_env)
        engine = make_engine(database_url)
        reset_schema(engine)
        data = seed(engine, citizens=args.citizens, venues=args.venues,
                    logbooks_per_venue=args.logbooks_per_venue,
                    feeds_per_venue=args.feeds_per_venue)
        log(f"seeded {args.citizens} visitors, {args.venues} venues × "
            f"{args.logbooks_per_venue} logbooks, {args.feeds_per_venue} feeds per venue "
            f"({engine.dialect.name}); work dir {workdir}")
        env = {"SCANBOOK_ENV": "bench", "SCANBOOK_DATA_DIR": str(workdir / "data"),
               "DATABASE_URL": database_url, "REDIS_URL": redis_url, **secrets_env}
        levels = sorted({int(n) for n in str(args.connections).split(",")})
        d, c = args.duration, levels[-1]  # the other phases use the most connections
        load_avg_before = os.getloadavg()
        more = args.uvicorn.split() if args.uvicorn else []
        flags = UVICORN_FLAGS + more
        ref_flags = REFERENCE_FLAGS + more
        ref = Server("bench.thin_ref:app", env, workdir / "thin_ref.log", ref_flags)
        app = Server("web.main:app", env, workdir / "app.log", flags)
        redis_pid = {"redis": redis_proc.pid} if redis_proc else {}
        ref_watch = {"server": ref.proc.pid, **redis_pid}
        app_watch = {"server": app.proc.pid, **redis_pid}
        profiles = {}
        if args.profile:
            base = Path(args.profile).resolve()
            profiles = {"app": (app.proc.pid, base),
                        "reference": (ref.proc.pid, base.with_name(base.name + ".reference"))}

        def py_spy(who: str) -> list[str] | None:
            """py-spy on a server and its child processes (the check-in writer's too) for the
            profiled phase; --nonblocking: it must not pause the process it measures."""
            if who not in profiles:
                return None
            pid, out = profiles.pop(who)
            return [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking",
                    "--subprocesses", "--format", "raw", "--rate", "200", "--duration", str(int(d)),
                    "--pid", str(pid), "-o", str(out)]

        seq = 0

        async def run_app(name: str, phases: list[dict]) -> list[dict]:
            nonlocal seq
            profile = (py_spy("app") if any(p["name"] == args.profile_phase for p in phases)
                       else None)
            out = await run_loadgen(workdir, name, loadgen_spec(app, data, args, phases, seq),
                                    app_watch, profile, metrics_url=app.url,
                                    profile_phase=args.profile_phase)
            seq = out["seq"]
            return out["phases"]

        async def run_ref(name: str, phases: list[dict]) -> list[dict]:
            profile = py_spy("reference") if any(p["name"] == "max" for p in phases) else None
            out = await run_loadgen(workdir, name, loadgen_spec(ref, data, args, phases, 0),
                                    ref_watch, profile)
            return out["phases"]

        try:
            feeds = await open_feeds(app.ws_url, data.feed_tokens)
            # Every visitor once, so the measured rounds run with a warm token cache; this
            # rate is reported too ("first_scans": every token is a cache miss).
            app_phases = await run_app("app-first", [
                {"name": "first", "mode": "closed", "connections": c, "duration": 300,
                 "requests": args.citizens}])
            await run_ref("reference-warmup", [
                {"name": "warmup", "mode": "closed", "connections": c, "duration": 3}])
            # Max rate: reference and Scanbook take turns, so both see the same machine
            # (other work on a shared box comes and goes), at each concurrency level; each
            # server's maximum is its best level (rounds summed).
            ref_rounds: list[dict] = []
            for r in range(args.rounds):
                for n in levels:
                    ref_rounds += await run_ref(f"reference-max-{r}-{n}", [
                        {"name": "max", "mode": "closed", "connections": n, "duration": d}])
                    app_phases += await run_app(f"app-max-{r}-{n}", [
                        {"name": "max", "mode": "closed", "connections": n, "duration": d}])
                    last = app_phases[-1]
                    log(f"round {r + 1}, {n} connections: reference "
                        f"{ref_rounds[-1]['rate']:.0f}/s, Scanbook "
                        f"{last['by_status'].get('201', 0) / last['duration_s']:.0f}/s accepted")
            ref_levels = {n: merge([p for p in ref_rounds if p["connections"] == n])
                          for n in levels}
            app_levels = {n: merge([p for p in app_phases
                                    if p["name"] == "max" and p["connections"] == n])
                          for n in levels}
            ref_best = max(levels, key=lambda n: ref_levels[n]["rate"])
            app_best = max(levels, key=lambda n: _accepted(app_levels[n]))
            ref_max = http_summary(ref_levels[ref_best])
            rate = args.rate or round(ref_max["answers_per_s"] / 2)
            log(f"fixed rate for both: {rate}/s")
            ref_fixed = http_summary((await run_ref("reference-fixed", [
                {"name": "fixed", "mode": "open", "connections": c, "duration": d,
                 "rate": rate}]))[0])
            app_phases += await run_app("app-fixed", [
                {"name": "fixed", "mode": "open", "connections": c, "duration": d,
                 "rate": rate}])
            # And at half Scanbook's own maximum: the latency of the pipeline itself when the
            # server has room (the target's rate may be past what it can take).
            own_rate = round(_accepted(app_levels[app_best]) / 2)
            app_phases += await run_app("app-half-own", [
                {"name": "half_own_max", "mode": "open", "connections": c, "duration": d,
                 "rate": own_rate}])
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, venue_id FROM checkin")).all()
            venue_of = {r.id: r.venue_id for r in rows}
            last_by_venue: dict[int, int] = {}
            for checkin_id, venue_id in venue_of.items():
                last_by_venue[venue_id] = max(last_by_venue.get(venue_id, 0), checkin_id)
            await wait_for_ids(feeds, last_by_venue)
            await close_feeds(feeds)
        finally:
            app.stop()
            ref.stop()
        load_avg_after = os.getloadavg()

        arrivals, integrity = feed_integrity(feeds)
        app_max_phase = app_levels[app_best]
        fixed_phase = next(p for p in app_phases if p["name"] == "fixed")
        app_max = {**http_summary(app_max_phase),
                   **feed_summary(app_max_phase, feeds, arrivals, venue_of)}
        app_fixed = {**http_summary(fixed_phase),
                     **feed_summary(fixed_phase, feeds, arrivals, venue_of)}
        half_phase = next(p for p in app_phases if p["name"] == "half_own_max")
        app_half = {**http_summary(half_phase),
                    **feed_summary(half_phase, feeds, arrivals, venue_of)}
        app_first = {**http_summary(app_phases[0]),
                     **feed_summary(app_phases[0], feeds, arrivals, venue_of)}
        created = sum(p["by_status"].get("201", 0) for p in app_phases)
        seen_anywhere = set().union(*arrivals) if arrivals else set()
        ratio = app_max["accepted_per_s"] / ref_max["answers_per_s"]
        lost_total = sum(feed_summary(p, feeds, arrivals, venue_of)["lost"] for p in app_phases)
        report = {
            "benchmark": "scan",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "profiled": bool(args.profile),
            "loop_thread_breakdown": breakdowns(args.profile, ref_max, app_max),
            "machine": {"cpus": os.cpu_count(), "loadavg_before": load_avg_before,
                        "loadavg_after": load_avg_after},
            "config": {"db": engine.dialect.name, "duration_s": d, "rounds": args.rounds,
                       "connections": levels, "fixed_rate": rate, "visitors": args.citizens,
                       "venues": args.venues, "logbooks_per_venue": args.logbooks_per_venue,
                       "feeds": len(feeds), "uvicorn": flags,
                       "uvicorn_reference": ref_flags},
            "reference": {"max": ref_max, "fixed": ref_fixed,
                          "max_per_s_by_connections": {
                              str(n): round(ref_levels[n]["rate"], 1) for n in levels},
                          "rounds_per_s": [(p["connections"], round(p["rate"], 1))
                                           for p in ref_rounds]},
            "app": {"max": app_max, "fixed": app_fixed, "half_own_max": app_half,
                    "max_accepted_per_s_by_connections": {
                        str(n): round(_accepted(app_levels[n]), 1) for n in levels},
                    "first_scans": app_first,
                    "rounds_per_s": [(p["connections"], round(_accepted(p), 1))
                                     for p in app_phases if p["name"] == "max"]},
            "totals": {"created_201": created, "rows_in_db": len(venue_of),
                       "rows_never_on_any_feed": len(set(venue_of) - seen_anywhere),
                       "lost": lost_total, **integrity},
            "ratio_accepted_vs_reference": round(ratio, 3),
            # The same ratio estimated from CPU: the server's µs per answer (all threads and
            # child processes: cpu_cores.server_total), reference ÷ Scanbook. CPU per answer
            # hardly moves when other work on the machine steals time, so this one is
            # steadier. (Scanbook's web process is bound by about one core, one GIL; its
            # check-in writer runs beside it on the other core: cpu_cores.server_children.)
            "ratio_by_server_cpu": cpu_ratio(ref_max, app_max),
            "targets": {
                f"ratio>={TARGET_RATIO}": ratio >= TARGET_RATIO,
                "fixed_scan_feed_p99<=20ms": (app_fixed["scan_feed_p99_ms"] or 1e9)
                <= TARGET_FEED_P99_MS,
                "lost==0": lost_total == 0,
                "duplicated==0": integrity["duplicated"] == 0,
            },
        }
        engine.dispose()
        return report
    finally:
        if redis_proc is not None:
            from realtime.embedded import stop_redis

            stop_redis(redis_proc)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


def cpu_ratio(ref_max: dict, app_max: dict) -> float | None:
    try:
        ref_us = ref_max["cpu_cores"]["server_total"] / ref_max["answers_per_s"]
        app_us = app_max["cpu_cores"]["server_total"] / app_max["accepted_per_s"]
    except (KeyError, TypeError, ZeroDivisionError):
        return None
    return round(ref_us / app_us, 3)


def breakdowns(profile: str | None, ref_max: dict, app_max: dict) -> dict | None:
    """µs of event-loop-thread CPU per answer, by part of the hot path (from py-spy)."""
    if not profile:
        return None
    from bench.profile import breakdown

    out = {}
    for who, path, summary, rate_key in (
            ("app", Path(profile), app_max, "accepted_per_s"),
            ("reference", Path(profile + ".reference"), ref_max, "answers_per_s")):
        loop_cores = (summary.get("cpu_cores") or {}).get("server_loop_thread")
        if not path.exists() or not loop_cores or not summary[rate_key]:
            continue
        us = loop_cores * 1e6 / summary[rate_key]
        shares = breakdown(str(path))["loop"]
        other_us = (summary["cpu_cores"].get("server_total", summary["cpu_cores"]["server"])
                    - loop_cores) * 1e6 / summary[rate_key]
        out[who] = {"loop_us_per_answer": round(us, 1),
                    "parts_us": {k: round(v * us, 1) for k, v in shares.items()},
                    "other_threads_us_per_answer": round(other_us, 1)}
    return out


def markdown(report: dict) -> str:
    ref, app = report["reference"], report["app"]
    cfg = report["config"]
    rows = [
        (f"thin reference, max ({ref['max']['connections']} connections)",
         ref["max"]["answers_per_s"], ref["max"], None),
        (f"thin reference, {cfg['fixed_rate']}/s", ref["fixed"]["answers_per_s"], ref["fixed"],
         None),
        (f"Scanbook, max ({app['max']['connections']} connections)",
         app["max"]["accepted_per_s"], app["max"], app["max"]),
        (f"Scanbook, {cfg['fixed_rate']}/s", app["fixed"]["accepted_per_s"], app["fixed"],
         app["fixed"]),
        (f"Scanbook, {app['half_own_max']['target_rate']}/s (½ its own max)",
         app["half_own_max"]["accepted_per_s"], app["half_own_max"], app["half_own_max"]),
        ("Scanbook, max, first scan of each visitor", app["first_scans"]["accepted_per_s"],
         app["first_scans"], app["first_scans"]),
    ]
    out = ["| run | accepted/s | HTTP p50 ms | HTTP p99 ms | scan→feed p50 ms | "
           "scan→feed p99 ms | lost | dup | server CPU µs/answer (with its writer process) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, rate, http, feed in rows:
        f = feed or {}
        out.append(f"| {name} | {rate:.0f} | {http['http_p50_ms']} | {http['http_p99_ms']} | "
                   f"{f.get('scan_feed_p50_ms', '–')} | {f.get('scan_feed_p99_ms', '–')} | "
                   f"{f.get('lost', '–')} | "
                   f"{report['totals']['duplicated'] if feed else '–'} | "
                   f"{http.get('server_cpu_us_per_answer')} |")
    out.append(f"\nratio accepted ÷ reference max: **{report['ratio_accepted_vs_reference']}**"
               f" (from server CPU per answer: {report['ratio_by_server_cpu']})"
               f" ({cfg['db']}, {cfg['connections']} connections, {cfg['feeds']} feeds, "
               f"{cfg['duration_s']} s per phase; load average before "
               f"{report['machine']['loadavg_before'][0]:.1f}, after "
               f"{report['machine']['loadavg_after'][0]:.1f})")
    parts = report.get("loop_thread_breakdown") or {}
    if parts.get("app"):
        ref_parts = (parts.get("reference") or {}).get("parts_us", {})
        out.append("\n| event-loop thread, µs CPU per answer | Scanbook | reference |")
        out.append("|---|---:|---:|")
        app_parts = parts["app"]["parts_us"]
        for name in [*app_parts, *(k for k in ref_parts if k not in app_parts)]:
            out.append(f"| {name} | {app_parts.get(name, 0):.0f} | "
                       f"{ref_parts.get(name, 0):.0f} |")
        ref_part = parts.get("reference") or {}
        out.append(f"| **event-loop thread** | **{parts['app']['loop_us_per_answer']:.0f}** | "
                   f"**{ref_part.get('loop_us_per_answer', 0):.0f}** |")
        out.append(f"| other threads, check-in writer process | "
                   f"{parts['app']['other_threads_us_per_answer']:.0f} | "
                   f"{ref_part.get('other_threads_us_per_answer', 0):.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scan", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=15, help="seconds per measured phase")
    parser.add_argument("--rounds", type=int, default=2,
                        help="max-rate rounds, reference and Scanbook taking turns")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--database-url", help="PostgreSQL URL (a database of its own: wiped)")
    parser.add_argument("--connections", default="64,256",
                        help="keep-alive connections: the max rate is measured at each level "
                             "and each server's best counts (group commit needs concurrency "
                             "to batch; the reference does best with fewer); other phases "
                             "use the largest")
    parser.add_argument("--rate", type=float, help="fixed rate (default: ½ the reference max)")
    parser.add_argument("--citizens", type=int, default=30000, help="distinct visitors")
    parser.add_argument("--venues", type=int, default=8)
    parser.add_argument("--logbooks-per-venue", type=int, default=2)
    parser.add_argument("--feeds-per-venue", type=int, default=2)
    parser.add_argument("--profile", metavar="FILE",
                        help="run the app under py-spy; collapsed stacks go to FILE")
    parser.add_argument("--uvicorn", metavar="FLAGS",
                        help="more uvicorn flags, for both servers (e.g. \"--ws wsproto\")")
    parser.add_argument("--profile-phase", default="max",
                        choices=["max", "fixed", "half_own_max", "first"],
                        help="the Scanbook phase to profile (the reference: always max)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, DB)")
    parser.add_argument("--markdown", action="store_true", help="also print a table on stderr")
    args = parser.parse_args(argv)
    if args.database_url:
        args.db = "postgres" if args.database_url.startswith("postgres") else "sqlite"

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    report = asyncio.run(bench(args))
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"scan-{report['config']['db']}-{stamp}.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    if args.markdown:
        print(markdown(report), file=sys.stderr)
    log(f"saved {path}")


if __name__ == "__main__":
    main()
