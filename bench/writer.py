"""Writer benchmark: the check-in writer alone (ingest/writer.py BatchWriter), no HTTP, on
PostgreSQL or SQLite, with one or more writer processes, each writing to venues of its own
(or all to the same venues with --shared). It shows what the database path costs a scan and
whether writers of different venues wait for each other.

    .venv/bin/python -m bench.writer --database-url postgresql://postgres@127.0.0.1:5432/sb_bench

Prints a JSON report on stdout: per writer count, scans/s, batches that waited for another
writer's venue, and where a batch's time went (the writer's own stopwatch marks)."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import text

import ingest.writer as writer_module
from bench.data import reset_schema, seed, share_data_key
from bench.scan import _cpu
from models.checkins import CheckinRequest
from models.db import make_engine


class _Marks(writer_module._Stopwatch):
    """The writer's stopwatch, summed over the run instead of logged."""

    totals: dict[str, float] = defaultdict(float)

    def log_if_slow(self, size: int) -> None:
        for (_, start), (name, end) in zip(self.marks, self.marks[1:], strict=False):
            self.totals[name] += end - start


def _visitor_ids(url: str) -> list[int]:
    """The seeded visitors' citizen ids (everyone but the registrars)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM citizen WHERE id NOT IN (SELECT citizen_id FROM registrar)"))]
    engine.dispose()
    return ids


def _cpu_of(pid: int | None) -> float:
    """CPU seconds of a process on this machine (the PostgreSQL server process of a writer's
    connection)."""
    return 0.0 if pid is None else _cpu(Path(f"/proc/{pid}/stat"), os.sysconf("SC_CLK_TCK"))


def _run(url: str, redis_url: str, venues: list[int], codes: dict[int, list[str]],
         citizens: list[int], batch: int, seconds: float, start_at: float, out) -> None:
    import redis
    share_data_key()
    writer_module._Stopwatch = _Marks
    engine = make_engine(url)
    client = redis.Redis.from_url(redis_url)
    writer = writer_module.BatchWriter(engine, client)
    rng = random.Random(os.getpid())
    my_codes = [c for v in venues for c in codes[v]]
    while time.time() < start_at:
        time.sleep(0.001)
    done = batches = 0
    backend = None
    if not writer.sqlite:  # the server process of the writer's kept connection
        writer.write([])  # (a batch keeps it: see BatchWriter._connection)
        conn = writer._connection()
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        conn.rollback()
    server = _cpu_of(backend)
    cpu = time.process_time()
    end = start_at + seconds
    while time.time() < end:
        requests = [CheckinRequest(citizen_id=rng.choice(citizens), code=rng.choice(my_codes))
                    for _ in range(batch)]
        results = writer.write(requests)
        done += sum(1 for r in results if not isinstance(r, Exception))
        batches += 1  # always a next batch: the writer process's loop at full load (it
        # settles only when no batch waits, or as BatchWriter.write decides)
    writer.close()
    cpu = time.process_time() - cpu
    server = _cpu_of(backend) - server
    out.put({"scans": done, "batches": batches, "waits": writer.order.waits, "cpu": cpu,
             "server_cpu": server,
             "marks": dict(_Marks.totals)})


def measure(url: str, redis_url: str, writers: int, venues: list[int], shared: bool,
            codes, citizens, batch: int, seconds: float) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 3.0  # every process connected before the clock starts
    procs = []
    for i in range(writers):
        mine = venues if shared else venues[i::writers]
        procs.append(ctx.Process(target=_run, args=(url, redis_url, mine, codes, citizens,
                                                    batch, seconds, start_at, out)))
    for p in procs:
        p.start()
    parts = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    scans = sum(p["scans"] for p in parts)
    batches = sum(p["batches"] for p in parts)
    marks: dict[str, float] = defaultdict(float)
    for part in parts:
        for name, value in part["marks"].items():
            marks[name] += value
    return {"writers": writers, "shared_venues": shared, "scans_per_s": round(scans / seconds),
            "batches": batches, "waits": sum(p["waits"] for p in parts),
            # the writers' own CPU a scan (the database server's is not in it)
            "writer_cpu_us_per_scan": round(sum(p["cpu"] for p in parts) / max(scans, 1) * 1e6),
            # PostgreSQL: the CPU of the server processes serving the writers, a scan
            "server_cpu_us_per_scan": round(sum(p["server_cpu"] for p in parts)
                                            / max(scans, 1) * 1e6),
            "ms_per_batch": {name: round(value / batches * 1e3, 3)
                             for name, value in marks.items()}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True,
                        help="a database of the benchmark's own: wiped")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL",
                                                              "redis://127.0.0.1:6379/15"))
    parser.add_argument("--venues", type=int, default=8)
    parser.add_argument("--citizens", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=64, help="check-ins a batch")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", default="1,2", help="writer counts to measure, in turn")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shared", action="store_true", help="every writer, every venue")
    args = parser.parse_args(argv)

    share_data_key()
    engine = make_engine(args.database_url)
    reset_schema(engine)
    data = seed(engine, citizens=args.citizens, venues=args.venues, logbooks_per_venue=2,
                feeds_per_venue=1)
    engine.dispose()
    citizens = _visitor_ids(args.database_url)
    codes: dict[int, list[str]] = defaultdict(list)
    for code, venue_id in zip(data.codes, data.logbook_venue, strict=True):
        codes[venue_id].append(code)
    runs = []
    for round_ in range(args.rounds):
        for n in (int(x) for x in args.writers.split(",")):
            run = measure(args.database_url, args.redis_url, n, data.venue_ids, args.shared,
                          codes, citizens, args.batch, args.seconds)
            run["round"] = round_ + 1
            print(json.dumps(run, ensure_ascii=False), file=sys.stderr)
            runs.append(run)
    print(json.dumps({"bench": "writer", "venues": args.venues, "batch": args.batch,
                      "seconds": args.seconds, "runs": runs}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
