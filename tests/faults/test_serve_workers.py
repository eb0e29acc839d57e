"""`scanbook serve --workers 2`: two web processes share one port (uvicorn's workers accept
from one socket); both serve, and a registrar connected to either sees a scan that came in
through whichever process took it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import orjson
import psutil
from websockets.sync.client import connect

from models.idnumber import make_id_number
from tests.servers import ROOT, free_port

FEEDS = 40


def _serve(data_dir, port: int) -> tuple[subprocess.Popen, list[str]]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "SCANBOOK_ADMIN_TOKEN", "SCANBOOK_SECRET")}
    env.update(SCANBOOK_DATA_DIR=str(data_dir), SCANBOOK_ENV="development")
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port),
                             "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                     daemon=True).start()
    deadline = time.monotonic() + 60
    while True:
        # /healthz answers as soon as one worker has started: wait for both to say so (the
        # other, still starting on a loaded machine, accepts no connection until then).
        started = sum("Application startup complete." in line for line in list(lines))
        try:
            if (httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                    and started >= 2):
                return proc, lines
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)


def _web_workers(serve: subprocess.Popen) -> list[psutil.Process]:
    """The uvicorn worker processes: children of the uvicorn supervisor."""
    for child in psutil.Process(serve.pid).children():
        if "uvicorn" in " ".join(child.cmdline()):
            return [p for p in child.children() if "resource_tracker" not in
                    " ".join(p.cmdline())]
    return []


def _holding(workers: list[psutil.Process], port: int) -> dict[int, int]:
    """Established connections on `port` per worker process."""
    return {w.pid: sum(1 for c in w.net_connections("tcp")
                       if c.laddr and c.laddr.port == port and c.status == "ESTABLISHED")
            for w in workers}


def test_serve_two_workers_share_the_port_and_the_feed(tmp_path):
    port = free_port()
    serve, lines = _serve(tmp_path / "var", port)
    feeds = []
    lock = threading.Lock()
    stack = contextlib.ExitStack()
    try:
        base = f"http://127.0.0.1:{port}"
        admin = {"Authorization": "Bearer " + (tmp_path / "var" / "admin_token").read_text()
                 .strip()}
        with httpx.Client(base_url=base, timeout=10) as http:
            def citizen(seq: int) -> dict:
                from datetime import date

                r = http.post("/api/admin/citizens", headers=admin, json={
                    "name": "王五", "id_number": make_id_number("110101", date(1990, 1, 1), seq)})
                assert r.status_code == 201, r.text
                return {"Authorization": "Bearer " + r.json()["token"]}

            owner, visitor = citizen(1), citizen(2)
            venue = http.post("/api/venues", headers=owner, json={
                "name": "图书馆", "address": "x", "district": "西城区",
                "category": "library"}).json()
            book = http.post(f"/api/venues/{venue['id']}/logbooks", headers=owner,
                             json={"label": "正门"}).json()

        workers = _web_workers(serve)
        assert len(workers) == 2, [w.cmdline() for w in workers]

        def open_feed(_):
            ws = connect(f"ws://127.0.0.1:{port}/ws/venues/{venue['id']}/feed",
                         additional_headers=owner, open_timeout=10)
            with lock:
                stack.enter_context(ws)
            assert orjson.loads(ws.recv(timeout=10))["type"] == "ready"
            return ws

        # Connections land on whichever worker accepts first: open them together until both
        # workers hold some (almost always the first batch).
        for _ in range(3):
            with ThreadPoolExecutor(8) as pool:
                feeds += list(pool.map(open_feed, range(FEEDS)))
            held = _holding(workers, port)
            if all(held.values()):
                break
        assert all(held.values()), held

        r = httpx.post(f"{base}/api/scan", headers=visitor, json={"code": book["token"]},
                       timeout=10)
        assert r.status_code == 201, r.text
        checkin_id = r.json()["checkin_id"]
        for ws in feeds:
            event = orjson.loads(ws.recv(timeout=10))
            while event["type"] != "checkin":
                event = orjson.loads(ws.recv(timeout=10))
            assert event["id"] == checkin_id
    finally:
        stack.close()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(40) == 0, "".join(lines)
