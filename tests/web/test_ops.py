"""Operations: the event-loop watchdog logs and counts a loop that woke late, and /metrics
shows the count."""

from __future__ import annotations

import asyncio
import logging
import time

from web.ops import LOOP_STALL_SECONDS, LOOP_TICK_SECONDS, LoopWatchdog


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
