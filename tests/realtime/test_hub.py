"""The hub's bounded per-connection queues: a slow reader cannot stall anyone."""

import asyncio

from realtime.hub import RESYNC, Subscription


def test_overflow_replaces_backlog_with_a_resync():
    async def run():
        sub = Subscription(("c",), size=3)
        for i in range(10):
            sub.deliver({"id": i})
        items = sub.take()
        return sub.overflows, items

    overflows, items = asyncio.run(run())
    assert overflows >= 1
    assert RESYNC in items  # the connection will catch up from the database
    assert len(items) <= 3
