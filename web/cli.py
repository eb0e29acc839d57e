"""The `scanbook` command: serve (the whole system), worker, migrate, officials (accounts),
and itinerary-sim (a development stand-in for the itinerary platform)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time

from models.settings import ALL_INTERFACES, is_loopback_url, load_settings, public_url_for

# How a web process runs, wherever it runs: `scanbook serve`, the tests' servers and the scan
# benchmark take these; the Procfile spells them out (tests/web/test_cli.py compares).
UVICORN_FLAGS = [
    # uvicorn's own protocols, one socket write a connection a loop turn (web/protocols.py).
    "--http", "web.protocols:HttpProtocol",
    "--ws", "web.protocols:WebSocketProtocol",
    "--ws-max-size", "65536",
    # Feed frames are small JSON; per-connection zlib state would double idle memory.
    "--ws-per-message-deflate", "false",
    "--no-access-log",
]

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
    from workers.context import redis_url
    from workers.runner import run_worker

    # Preloads the job modules before RQ forks, hands on dead workers' jobs, runs the
    # retention cron in a thread; its own Redis clients (workers/runner.py).
    run_worker(redis_url(load_settings()), burst=args.burst)
    return 0


def _children_env(redis_url: str, public_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["REDIS_URL"] = redis_url
    env["SCANBOOK_PUBLIC_URL"] = public_url
    return env


def _lan_address() -> str | None:
    """This machine's address on the network its default route leads to (a UDP connect
    sends nothing; it only picks the interface), or None without one."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def public_url(host: str, port: int) -> str:
    """SCANBOOK_PUBLIC_URL, else where `serve --host/--port` listens."""
    configured = os.environ.get("SCANBOOK_PUBLIC_URL", "").strip().rstrip("/")
    if configured:
        return configured
    return public_url_for(host, port, _lan_address() if host in ALL_INTERFACES else None)


def banner(*, data_dir, base: str, public: str, redis_url: str, embedded: bool,
           admin_token: str | None) -> list[str]:
    """What `scanbook serve` prints when it is up, warnings last."""
    lines = [f"Scanbook is running (data in {data_dir})",
             f"  citizen / scan pages  {base}/",
             f"  registrar console     {base}/console",
             f"  official console      {base}/admin",
             f"  wallboard             {base}/wallboard",
             f"  QR codes and posters  {public}/s/…",
             f"  redis                 {redis_url}{' (embedded)' if embedded else ''}"]
    if admin_token:
        lines += [f"  official token        {admin_token}",
                  f"                        (generated; kept in {data_dir / 'admin_token'})"]
    if is_loopback_url(public):
        lines += [f"WARNING: QR codes and posters point at {public}, a loopback address: a "
                  "phone cannot open it, and a printed poster would point nowhere. Set "
                  "SCANBOOK_PUBLIC_URL to the address phones reach, or serve with "
                  "--host 0.0.0.0 on the venue's network."]
    return lines


def _stop_child(name: str, proc: subprocess.Popen, seconds: float = 15) -> None:
    """SIGTERM, wait up to `seconds`, then kill."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    print(f"  {name} stopped", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    """Web (uvicorn), an RQ worker and — without REDIS_URL — the embedded Redis, in the
    foreground; SIGTERM or Ctrl-C stops the web process, then the worker, then Redis (the
    children run in sessions of their own, so a Ctrl-C reaches this process alone)."""
    from realtime.embedded import start_redis, stop_redis

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    redis_proc = None
    redis_url = settings.redis_url
    if not redis_url:
        redis_proc, redis_url = start_redis(settings.data_dir / "redis")
        (settings.data_dir / "redis" / "url").write_text(redis_url)
    _migrate()
    public = public_url(args.host, args.port)
    env = _children_env(redis_url, public)
    web = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.main:app", "--host", args.host, "--port",
         str(args.port), "--workers", str(args.workers), *UVICORN_FLAGS,
         "--timeout-graceful-shutdown", "5"],
        env=env, start_new_session=True,
    )
    worker = subprocess.Popen([sys.executable, "-m", "web.cli", "worker"], env=env,
                              start_new_session=True)
    base = public_url_for(args.host, args.port)
    for line in banner(data_dir=settings.data_dir, base=base, public=public,
                       redis_url=redis_url, embedded=redis_proc is not None,
                       admin_token=None if os.environ.get("SCANBOOK_ADMIN_TOKEN")
                       else settings.admin_token):
        print(line)
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
        # Web first (it finishes the scans it accepted), then the worker (its jobs need
        # Redis), then Redis.
        print("Scanbook stopping", flush=True)
        _stop_child("web", web)
        _stop_child("worker", worker)
        if redis_proc is not None:
            stop_redis(redis_proc)
            print("  redis stopped", flush=True)
        print("Scanbook stopped", flush=True)
    return code


def cmd_itinerary_sim(args: argparse.Namespace) -> int:
    """Play the itinerary platform: sign a callback with SCANBOOK_ITINERARY_SECRET and post it
    to this installation, so the travel popup's flow works on one machine. Development only:
    in production only the real platform signs."""
    import json
    import secrets
    import urllib.error
    import urllib.request
    from datetime import UTC, datetime

    from models.itinerary import HEADER, signature

    settings = load_settings()
    if settings.production:
        print("itinerary-sim is a development tool; refused in production", file=sys.stderr)
        return 2
    body = json.dumps({"id_number": args.id_number.strip().upper(), "result": args.result,
                       "reference": args.reference or f"SIM-{secrets.token_hex(8)}",
                       "at": datetime.now(UTC).isoformat()}).encode()
    url = (args.url or settings.public_url).rstrip("/") + "/api/itinerary/callback"
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json",
        HEADER: signature(settings.itinerary_secret, body, int(time.time()))})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, answer = response.status, response.read().decode()
    except urllib.error.HTTPError as failure:
        status, answer = failure.code, failure.read().decode()
    except OSError as failure:
        print(f"could not reach {url}: {failure}", file=sys.stderr)
        return 1
    print(status, answer)
    return 0 if status < 300 else 1
def _redis_url(settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    from realtime.embedded import ensure_embedded_redis

    return ensure_embedded_redis(settings.data_dir)


def cmd_officials(args: argparse.Namespace) -> int:
    """`scanbook officials add|list|disable`: officials' accounts from the command line (the
    same domain functions as the API; changes are audited as made by the system)."""
    from sqlmodel import Session

    from models import audit
    from models.db import make_engine
    from models.errors import DomainError
    from models.officials import create_official, disable_official, list_officials

    settings = load_settings()
    engine = make_engine(settings.database_url)
    actor = audit.Actor("system", name="command line")
    try:
        with Session(engine, expire_on_commit=False) as session:
            if args.action == "add":
                official, token = create_official(session, name=args.name, role=args.role,
                                                  district=args.district, login=args.login)
                audit.record(session, actor=actor, action=audit.OFFICIAL_CREATE,
                             target=f"official:{official.id}",
                             detail={"name": official.name, "role": official.role,
                                     "district": official.district})
                session.commit()
                print(f"official {official.id} ({official.login}): {official.name}, "
                      f"{official.role}, {official.district or 'city level'}")
                print(f"token (shown once): {token}")
            elif args.action == "list":
                for o in list_officials(session):
                    print(f"{o.id}\t{o.login}\t{o.name}\t{o.role}\t{o.district or '-'}\t"
                          f"{'active' if o.active else 'disabled'}")
            else:
                from realtime.connection import sync_client
                from web.sessions import end_all_sync

                official = disable_official(session, official_id=args.id)
                audit.record(session, actor=actor, action=audit.OFFICIAL_DISABLE,
                             target=f"official:{official.id}", detail={"name": official.name})
                session.commit()
                client = sync_client(_redis_url(settings))
                ended = end_all_sync(client, "official", official.id)
                client.close()
                print(f"official {official.id} disabled; {ended} session(s) ended")
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not its plugin list every start
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
    sim = sub.add_parser("itinerary-sim", help="development: play the itinerary platform and "
                         "send a signed verification callback")
    sim.add_argument("--id-number", required=True, help="the citizen's resident ID number")
    sim.add_argument("--result", choices=("passed", "failed"), default="passed")
    sim.add_argument("--reference", help="the platform's reference (default: a random one)")
    sim.add_argument("--url", help="the installation's base URL (default: SCANBOOK_PUBLIC_URL)")
    sim.set_defaults(func=cmd_itinerary_sim)
    officials = sub.add_parser("officials", help="officials' accounts: add, list, disable")
    actions = officials.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="a new official; prints their token once")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=["admin", "operator", "tracer", "viewer"])
    add.add_argument("--district", default=None, help="omit for the city level")
    add.add_argument("--login", default=None, help="sign-in name (default: the name)")
    actions.add_parser("list", help="every official")
    disable = actions.add_parser("disable", help="disable an account; ends its sessions")
    disable.add_argument("id", type=int)
    officials.set_defaults(func=cmd_officials)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
