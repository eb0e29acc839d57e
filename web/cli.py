"""The `scanbook` command: serve (the whole system), worker, migrate."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

from models.settings import load_settings

log = logging.getLogger("scanbook")


def _migrate() -> None:
    from models.db import make_engine
    from models.migrate import upgrade
    from models.partitions import ensure_partitions

    engine = make_engine(load_settings().database_url)
    upgrade(engine)
    ensure_partitions(engine)  # PostgreSQL: today's check-in partition and the next days'
    engine.dispose()


def cmd_migrate(_args: argparse.Namespace) -> int:
    _migrate()
    print("database is at the newest schema")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """An RQ worker with the JSON serializer and the cron scheduler (retention)."""
    from realtime.connection import sync_client
    from workers.runner import run_worker

    settings = load_settings()
    url = settings.redis_url
    if not url:
        from realtime.embedded import ensure_embedded_redis

        url = ensure_embedded_redis(settings.data_dir)
    # Preloads the job modules before RQ forks, hands on dead workers' jobs, runs the
    # retention cron in a thread.
    run_worker(sync_client(url), burst=args.burst)
    return 0


def _children_env(redis_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    return env


def cmd_serve(args: argparse.Namespace) -> int:
    """Web (uvicorn), an RQ worker and — without REDIS_URL — the embedded Redis, in the
    foreground; SIGTERM or Ctrl-C stops them all."""
    from realtime.embedded import start_redis, stop_redis

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis_proc = None
    redis_url = settings.redis_url
    if not redis_url:
        redis_proc, redis_url = start_redis(settings.data_dir / "redis")
        (settings.data_dir / "redis" / "url").write_text(redis_url)
    _migrate()
    env = _children_env(redis_url)
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.main:app", "--host", args.host, "--port",
         str(args.port), "--workers", str(args.workers), "--ws-max-size", "65536",
         # Feed frames are small JSON; per-connection zlib state would double idle memory.
         "--ws-per-message-deflate", "false",
         "--timeout-graceful-shutdown", "5", "--no-access-log"],
        env=env,
    )
    worker = subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], env=env)
    base = f"http://{args.host if args.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{args.port}"
    print(f"Scanbook is running (data in {settings.data_dir})")
    print(f"  citizen / scan pages  {base}/")
    print(f"  registrar console     {base}/console")
    print(f"  official console      {base}/admin")
    print(f"  wallboard             {base}/wallboard")
    print(f"  redis                 {redis_url}{' (embedded)' if redis_proc else ''}")
    if not os.environ.get("SCANBOOK_ADMIN_TOKEN"):
        print(f"  official token        {settings.admin_token}")
        print(f"                        (generated; kept in {settings.data_dir / 'admin_token'})")
    sys.stdout.flush()

    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    code = 0
    try:
        while not stopping:
            for name, proc in (("web", web), ("worker", worker)):
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stopping, code = True, 1
            time.sleep(0.2)
    finally:
        for proc in (web, worker):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (web, worker):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if redis_proc is not None:
            stop_redis(redis_proc)
        print("Scanbook stopped")
    return code


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="scanbook")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run web, worker and (without REDIS_URL) Redis")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="run an RQ worker (with the scheduler)")
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    worker.set_defaults(func=cmd_worker)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=cmd_migrate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
