"""Operations: the event-loop watchdog logs and counts a loop that woke late, and /metrics
shows the count; the file table is grown once at start-up, and nothing in use is touched."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
import time

import pytest

from web.ops import FILE_TABLE_MAX, LOOP_STALL_SECONDS, LOOP_TICK_SECONDS, LoopWatchdog


def test_the_watchdog_counts_a_blocked_loop_once(caplog):
    async def run():
        watchdog = LoopWatchdog()
        watchdog.start()
        try:
            await asyncio.sleep(LOOP_TICK_SECONDS * 3)
            quiet = watchdog.stalls
            time.sleep(LOOP_TICK_SECONDS + LOOP_STALL_SECONDS * 2)  # a blocking call on the loop
            await asyncio.sleep(LOOP_TICK_SECONDS * 2)
            return quiet, watchdog.stalls
        finally:
            await watchdog.stop()

    with caplog.at_level(logging.WARNING, logger="scanbook.ops"):
        quiet, stalls = asyncio.run(run())
    assert quiet == 0
    assert stalls == 1
    assert [r.message for r in caplog.records if "event loop stalled" in r.message]


def test_metrics_show_the_stalls(client):
    lines = [line for line in client.get("/metrics").text.splitlines()
             if line.startswith("scanbook_loop_stalls")]
    assert len(lines) == 1 and float(lines[0].split()[1]) >= 0


def _in_subprocess(code: str) -> dict:
    """Run `code` in a fresh Python (its limits and file table are its own); it prints a
    JSON object."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=60, check=True)
    return json.loads(out.stdout)


def _fd_size() -> str:
    return "int([l for l in open('/proc/self/status') if l.startswith('FDSize:')][0].split()[1])"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="Linux /proc")
def test_the_file_table_is_grown_once_at_start_and_no_descriptor_is_left_open():
    got = _in_subprocess(f"""
        import json, os, resource
        from web.ops import prepare_file_table
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        before_size, before_open = {_fd_size()}, len(os.listdir('/proc/self/fd'))
        reserved = prepare_file_table()
        print(json.dumps({{"hard": hard, "reserved": reserved, "before": before_size,
                          "size": {_fd_size()},
                          "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                          "leaked": len(os.listdir('/proc/self/fd')) - before_open}}))
    """)
    expected = min(got["hard"], FILE_TABLE_MAX)
    assert got["soft"] == got["hard"]  # the soft limit of 256 was raised
    assert got["reserved"] == expected
    assert got["before"] < expected <= got["size"]
    assert got["leaked"] == 0


def test_growing_the_file_table_never_touches_a_descriptor_in_use(tmp_path):
    path = tmp_path / "open.txt"
    path.write_text("still here")
    got = _in_subprocess(f"""
        import json, os
        from web.ops import prepare_file_table
        fd = os.open({str(path)!r}, os.O_RDONLY)
        high = os.dup2(fd, 300)  # a descriptor where the reservation would land
        os.close(fd)
        reserved = prepare_file_table(301)
        print(json.dumps({{"reserved": reserved, "read": os.pread(high, 64, 0).decode()}}))
    """)
    assert got == {"reserved": 301, "read": "still here"}
