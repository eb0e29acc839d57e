"""`scanbook serve` on a fresh data dir: embedded Redis, migrations, web and worker; a generated
official token; SIGTERM stops every child; a second start reuses the data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import httpx2 as httpx
import psutil

from models.idnumber import make_id_number
from tests.servers import ROOT, free_port


def _serve(data_dir: Path, port: int, *, public_url: bool = True, new_session: bool = False
           ) -> tuple[subprocess.Popen, list[str]]:
    dropped = ("REDIS_URL", "DATABASE_URL", "SCANBOOK_ADMIN_TOKEN", "SCANBOOK_SECRET",
               *(() if public_url else ("SCANBOOK_PUBLIC_URL",)))
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["SCANBOOK_DATA_DIR"] = str(data_dir)
    env["SCANBOOK_ENV"] = "development"
    proc = subprocess.Popen([sys.executable, "-m", "web.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=new_session)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                     daemon=True).start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "".join(lines)
        time.sleep(0.2)
    return proc, lines


def _stop(proc: subprocess.Popen) -> list[int]:
    children = [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(40) == 0
    return children


def test_serve_runs_everything_and_stops_cleanly(tmp_path):
    data, port = tmp_path / "var", free_port()
    proc, lines = _serve(data, port)
    try:
        token = (data / "admin_token").read_text().strip()
        assert any(token in line for line in lines), "the generated token is printed"
        assert (data / "scanbook.db").is_file() and (data / "redis" / "url").is_file()
        base = f"http://127.0.0.1:{port}"
        admin = {"Authorization": f"Bearer {token}"}
        id_number = make_id_number("110101", date(1990, 1, 1), 1)
        r = httpx.post(f"{base}/api/admin/citizens", headers=admin,
                       json={"name": "张三", "id_number": id_number})
        assert r.status_code == 201
        # the worker runs: a status change is carried out by the real RQ worker
        r = httpx.post(f"{base}/api/admin/status-changes", headers=admin,
                       json={"changes": [{"id_number": id_number, "status": "red",
                                          "reason": "test"}]})
        job = r.json()["job_id"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/api/admin/jobs/{job}", headers=admin).json()["state"] != \
                "finished":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        children = _stop(proc)
    assert len(children) >= 3  # redis, web, worker
    time.sleep(0.5)
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]

    proc, lines = _serve(data, port)
    try:
        r = httpx.post(f"http://127.0.0.1:{port}/api/admin/citizens", headers=admin,
                       json={"name": "张三", "id_number": id_number})
        assert r.status_code == 409  # the same data: the citizen is still there
    finally:
        _stop(proc)


def test_qr_codes_follow_the_port_and_the_banner_warns_of_loopback(tmp_path):
    data, port = tmp_path / "var", free_port()
    proc, lines = _serve(data, port, public_url=False)  # SCANBOOK_PUBLIC_URL unset
    try:
        base = f"http://127.0.0.1:{port}"
        token = (data / "admin_token").read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{base}/api/admin/citizens", headers=admin, json={
            "name": "张三", "id_number": make_id_number("110101", date(1990, 1, 1), 2)})
        owner = {"Authorization": f"Bearer {r.json()['token']}"}
        venue = httpx.post(f"{base}/api/venues", headers=owner, json={
            "name": "书店", "address": "东四北大街1号", "district": "东城区",
            "category": "shop"}).json()
        book = httpx.post(f"{base}/api/venues/{venue['id']}/logbooks", headers=owner,
                          json={"label": "正门"}).json()
        assert book["scan_url"].startswith(f"{base}/s/")  # the --port, not a default 8000
        banner = "".join(lines)
        assert f"QR codes and posters  {base}/s/" in banner
        assert "WARNING: QR codes and posters point at" in banner and "loopback" in banner
    finally:
        _stop(proc)


def test_ctrl_c_stops_web_then_worker_then_redis_without_a_traceback(tmp_path):
    data, port = tmp_path / "var", free_port()
    proc, lines = _serve(data, port, new_session=True)
    children = {}
    for child in psutil.Process(proc.pid).children():
        cmd = " ".join(child.cmdline())
        name = ("redis" if "redis-server" in cmd else "web" if "uvicorn" in cmd
                else "worker" if "worker" in cmd else None)
        if name:
            children[name] = child
    assert set(children) == {"web", "worker", "redis"}, children
    gone: dict[str, float] = {}

    def watch() -> None:
        while len(gone) < len(children) and proc.poll() is None:
            for name, child in children.items():
                if name not in gone and (not child.is_running()
                                         or child.status() == psutil.STATUS_ZOMBIE):
                    gone[name] = time.monotonic()
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the foreground group
    assert proc.wait(60) == 0
    watcher.join(5)
    time.sleep(0.2)  # the reader thread's last lines
    output = "".join(lines)
    assert "Scanbook is running" in output
    assert "Traceback" not in output, output
    assert "setup plugin" not in output, output
    order = [line.strip() for line in lines if line.strip() in
             ("web stopped", "worker stopped", "redis stopped")]
    assert order == ["web stopped", "worker stopped", "redis stopped"], output
    assert gone["web"] < gone["worker"] < gone["redis"], gone


def test_the_procfile_runs_web_with_the_same_uvicorn_flags_as_scanbook_serve():
    from web.cli import UVICORN_FLAGS

    web = next(line for line in (ROOT / "Procfile").read_text().splitlines()
               if line.startswith("web:"))
    words = web.split()
    flags = " ".join(UVICORN_FLAGS)
    assert flags in " ".join(words), (flags, web)
