"""Occupancy on the venue feeds: `{"type": "occupancy", "venue_id", "inside", "capacity", ...}`
when a venue's count of open stays changes, at most once every INTERVAL.

One watcher per process and venue, while at least one feed of that venue is open here: it
listens on the venue's channel (through the hub, like a feed), and when check-ins or
check-outs come it recounts in the thread pool (models/crowding.venues_crowding: the count,
the level and the wallboard's advice for the venue) and hands the event to the venue's feeds
in this process when it changed. The count of the moment is on GET /api/venues/{id}. Stays
that end by their time limit are announced by the expiry job's checkout events; a recount
every REFRESH_SECONDS catches anything else. Nothing is published: every process counts for
its own feeds, so a venue's registrars on two processes both hear it without a second
message through Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from models.crowding import venues_crowding
from models.tables import utcnow
from realtime.events import venue_channel
from realtime.hub import RESYNC, Hub

log = logging.getLogger("scanbook.occupancy")

INTERVAL = 1.0  # the contract: at most once a second
REFRESH_SECONDS = 30.0
_CHANGES = frozenset({"checkin", "checkout"})


class Occupancy:
    def __init__(self, hub: Hub, engine: Engine, *, interval: float = INTERVAL,
                 refresh: float = REFRESH_SECONDS) -> None:
        self.hub = hub
        self.engine = engine
        self.interval = interval
        self.refresh = refresh
        self._watchers: dict[int, int] = {}
        self._tasks: dict[int, asyncio.Task] = {}
        self._last: dict[int, tuple] = {}  # venue -> what its feeds were last told
        # One recount at a time in this process, for every venue that asked meanwhile. The
        # venues' watchers wake together (a batch of check-ins reaches them all at once):
        # eight recounts in eight pool threads each took the GIL in turn from the event loop,
        # a stall of 20-60 ms once a second (bench.scan's fixed phase, 30,000 stays open at 8
        # venues, ~5 ms a recount).
        self._counting = asyncio.Lock()
        self._wanted: set[int] = set()  # venues waiting for the next recount
        self._next: asyncio.Future | None = None  # that recount's {venue: event}
        self._counters: set[asyncio.Task] = set()

    def _count(self, venue_ids: list[int]) -> dict[int, dict]:
        with self.engine.connect() as conn:
            return venues_crowding(conn, venue_ids, now=utcnow())

    async def _recount(self, venue_id: int) -> dict:
        """The venue's occupancy event, counted with every venue that asks before the count
        starts (one thread-pool job, one statement per part for all of them)."""
        self._wanted.add(venue_id)
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            self._next.add_done_callback(_retrieved)
            task = loop.create_task(self._count_wanted(self._next))
            self._counters.add(task)
            task.add_done_callback(self._counters.discard)
        return (await asyncio.shield(self._next))[venue_id]

    async def _count_wanted(self, done: asyncio.Future) -> None:
        try:
            async with self._counting:
                venues, self._wanted, self._next = sorted(self._wanted), set(), None
                done.set_result(await run_in_threadpool(self._count, venues))
        except Exception as exc:  # the database is away: each waiter logs it
            done.set_exception(exc)
        except BaseException:  # stopped: whoever asks next starts a recount of their own
            if self._next is done:
                self._next = None
            done.set_exception(RuntimeError("occupancy recount cancelled"))
            raise

    @asynccontextmanager
    async def watch(self, venue_id: int) -> AsyncIterator[None]:
        """Keep the venue's occupancy coming to its feeds here while the block runs."""
        self._watchers[venue_id] = self._watchers.get(venue_id, 0) + 1
        if venue_id not in self._tasks:
            self._tasks[venue_id] = asyncio.create_task(self._run(venue_id),
                                                        name=f"occupancy-{venue_id}")
        try:
            yield
        finally:
            self._watchers[venue_id] -= 1
            if not self._watchers[venue_id]:
                del self._watchers[venue_id]
                task = self._tasks.pop(venue_id, None)
                self._last.pop(venue_id, None)
                if task is not None:
                    task.cancel()

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *self._counters]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, venue_id: int) -> None:
        channel = venue_channel(venue_id)
        changed = asyncio.Event()
        async with self.hub.subscribe(channel) as sub:
            sub.on_deliver = changed.set
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), self.refresh)
                changed.clear()
                events = sub.take()
                # A check-in or check-out changes the count; so may what a resync (Redis was
                # away) stands for, once the feeds have a count to correct. Our own occupancy
                # events, a logbook's state, an access recheck: nothing to count.
                counted = venue_id in self._last
                if events and not any(e.get("type") in _CHANGES or (e is RESYNC and counted)
                                      for e in events):
                    continue
                if not events and not counted:
                    continue  # the periodic recount corrects a count the feeds have
                try:
                    event = await self._recount(venue_id)
                except Exception as exc:  # the database is away: try again next time
                    log.warning("occupancy of venue %s not counted: %s", venue_id, exc)
                else:
                    key = _key(event)
                    if self._last.get(venue_id) != key:
                        self._last[venue_id] = key
                        self.hub.deliver_local(channel, event)
                await asyncio.sleep(self.interval)


def _retrieved(future: asyncio.Future) -> None:
    """Mark a recount's failure as seen: its waiters each log it (or were cancelled)."""
    if not future.cancelled():
        future.exception()


def _key(event: dict) -> tuple:
    """What a change worth telling is made of."""
    advice = event["advice"]
    return (event["inside"], event["capacity"], event["level"],
            None if advice is None else (advice["kind"], advice["add"]))
