"""Real server processes for tests: uvicorn running web.main:app, and RQ workers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from web.cli import UVICORN_FLAGS

ROOT = Path(__file__).resolve().parents[1]


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one this process was given before: the kernel can hand
    the same port out again as soon as its socket is closed (two of the Sentinel test's
    three Sentinels once got the same one, and the second could not start)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Server:
    def __init__(self, proc: subprocess.Popen, port: int):
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"ws://127.0.0.1:{port}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(port: int | None = None, env: dict | None = None, workers: int = 1) -> Server:
    """Start uvicorn in a child process with the test environment; wait for /healthz."""
    port = port or free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "web.main:app", "--host", "127.0.0.1", "--port",
         str(port), "--workers", str(workers), "--log-level", "warning", *UVICORN_FLAGS],
        cwd=ROOT, env={**os.environ, **(env or {})},
    )
    server = Server(proc, port)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"server on port {port} did not start")
        time.sleep(0.1)


@contextmanager
def running_server(**kwargs):
    server = start_server(**kwargs)
    try:
        yield server
    finally:
        server.stop()
