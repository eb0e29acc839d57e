"""One Redis listener per process, fanning events out to bounded per-connection queues."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from realtime.connection import async_client
from realtime.events import ACCESS, CHECKINS, decode, venue_channel

VENUE_PREFIX = "sb:venue:"  # realtime.events.venue_channel
# The listener's client: a command (SUBSCRIBE, the health-check PING) unanswered within
# REDIS_TIMEOUT means the connection is lost; an idle subscription is PINGed every
# HEALTH_CHECK_SECONDS, so a Redis that vanished is noticed within about 15 s, and every
# connection resyncs from the database once the listener is back (docs/redis-clients.md).
REDIS_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0
HEALTH_CHECK_SECONDS = 10

log = logging.getLogger("scanbook.hub")

RESYNC = {"type": "_resync"}  # tells a connection to catch up from the database
RECHECK = {"type": "_recheck"}  # tells a connection to recheck its holder's access


def official_holder(official_id: int) -> str:
    """The holder key of an official's connections (citizens' are their ids)."""
    return f"official:{official_id}"


class Subscription:
    """A connection's inbox: a list made on the first delivery and handed over whole by
    take(), and a callback that tells the connection there is something to send. An idle
    connection holds no queue and no waiting task (an asyncio.Queue alone is four deques,
    ~4.5 KB: a third of the budget of 30 KB per idle connection).

    Bounded: a slow reader never stalls the listener or others; on overflow the backlog is
    dropped and a resync from the database is queued instead.

    `holder`: the citizen whose access the connection rests on (official_holder(id) for an
    official's), so that an access change of theirs reaches every connection they hold."""

    __slots__ = ("channels", "holder", "size", "overflows", "on_deliver", "_items")

    def __init__(self, channels: tuple[str, ...], size: int,
                 holder: int | str | None = None):
        self.channels = channels
        self.holder = holder
        self.size = size
        self.overflows = 0
        self.on_deliver: Callable[[], None] | None = None
        self._items: list[dict] | None = None

    def deliver(self, event: dict) -> None:
        items = self._items
        if items is None:
            items = self._items = []
        if len(items) >= self.size:
            self.overflows += 1
            items.clear()
            event = RESYNC
        items.append(event)
        if self.on_deliver is not None:
            self.on_deliver()

    @property
    def pending(self) -> bool:
        return bool(self._items)

    def take(self) -> list[dict]:
        """Everything delivered since the last take, oldest first."""
        items, self._items = self._items, None
        return items or []


# Python's full (generation 2) collection walks every tracked object; with 10,000 open
# connections that is millions of objects and pauses of 1-3 s, which stall every feed (and
# blew the 1 s fan-out target). Connection state is long-lived: move it out of the collector's
# sight (gc.freeze) every FREEZE_SECONDS. Cyclic garbage among frozen objects (a closed
# connection's leftovers) is only found after a thaw, so every THAW_SECONDS: unfreeze, one
# full collection (one pause, at a time we choose), freeze.
FREEZE_SECONDS = 10.0
THAW_SECONDS = 30 * 60.0


async def _gc_policy() -> None:
    thawed = time.monotonic()
    while True:
        await asyncio.sleep(FREEZE_SECONDS)
        if time.monotonic() - thawed >= THAW_SECONDS:
            gc.unfreeze()
            gc.collect()
            thawed = time.monotonic()
        gc.freeze()


class Hub:
    def __init__(self, redis_url: str, *, queue_size: int = 1000):
        self.redis_url = redis_url
        self.queue_size = queue_size
        self._subs: dict[str, set[Subscription]] = {}
        # citizen id (or official_holder(official id)) -> their connections
        self._held: dict[int | str, set[Subscription]] = {}
        self._pubsub: aioredis.client.PubSub | None = None
        self._client: aioredis.Redis | None = None
        self._task: asyncio.Task | None = None
        self._gc_task: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self.reconnects = 0
        self.gaps = 0
        self._last: dict[int, int] = {}  # venue id -> its newest check-in id seen
        # Every ACCESS message also goes here first (web: revoked citizen tokens leave the
        # token cache before the connections recheck); None after a reconnect, when some may
        # have been missed.
        self.on_access: Callable[[dict | None], None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="hub-listener")
        self._gc_task = asyncio.create_task(_gc_policy(), name="hub-gc-freeze")
        # Don't block start-up on Redis: feeds resync from the database once it answers.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 5)

    async def stop(self) -> None:
        if self._gc_task:
            self._gc_task.cancel()
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def connections(self) -> int:
        return len({s for subs in self._subs.values() for s in subs})

    @asynccontextmanager
    async def subscribe(self, *channels: str, holder: int | str | None = None
                        ) -> AsyncIterator[Subscription]:
        sub = Subscription(channels, self.queue_size, holder)
        if holder is not None:
            self._held.setdefault(holder, set()).add(sub)
        new = []
        for channel in channels:
            subs = self._subs.setdefault(channel, set())
            if not subs:
                new.append(channel)
            subs.add(sub)
        try:
            if new and self._pubsub is not None and self.connected:
                try:
                    await self._pubsub.subscribe(*new)
                except Exception:  # the listener reconnects and resubscribes everything
                    log.warning("subscribe failed; resync follows on reconnect")
            yield sub
        finally:
            held = self._held.get(holder) if holder is not None else None
            if held is not None:
                held.discard(sub)
                if not held:
                    del self._held[holder]
            gone = []
            for channel in channels:
                subs = self._subs.get(channel)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[channel]
                        gone.append(channel)
            if gone and self._pubsub is not None and self.connected:
                with contextlib.suppress(Exception):
                    await self._pubsub.unsubscribe(*gone)

    async def _close(self) -> None:
        self._connected.clear()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
        self._pubsub = self._client = None

    def _access(self, message: dict) -> None:
        """ACCESS: someone's access may have ended (realtime.events.access_changed)."""
        self._notify_access(message)
        self.recheck(venues=message.get("venues") or (), citizens=message.get("citizens") or (),
                     officials=message.get("officials") or ())

    def _notify_access(self, message: dict | None) -> None:
        if self.on_access is not None:
            try:
                self.on_access(message)
            except Exception:
                log.exception("access message handler failed")

    def recheck(self, *, venues=(), citizens=(), officials=()) -> int:
        """Queue an access recheck on every connection to these venues' feeds and every
        connection held by these citizens or officials; how many connections."""
        targets: set[Subscription] = set()
        for venue_id in venues:
            targets.update(self._subs.get(venue_channel(venue_id), ()))
        for citizen_id in citizens:
            targets.update(self._held.get(citizen_id, ()))
        for official_id in officials:
            targets.update(self._held.get(official_holder(official_id), ()))
        for sub in targets:
            sub.deliver(RECHECK)
        return len(targets)

    def _checkins(self, batch: dict) -> None:
        """CHECKINS: a committed batch; each event to the feeds of its venue, in id order,
        after a resync of any venue whose previous batch never reached us; then the
        checkouts of the stays the batch ended."""
        last_seen = self._last
        for venue_id, prev, last in batch["venues"]:
            known = last_seen.get(venue_id)
            last_seen[venue_id] = last
            if known != prev and not (known is None and prev == 0):  # (0: its first batch)
                self._resync_venue(venue_id, known, prev)
        self._fan_out(batch["events"])
        self._fan_out(batch.get("checkouts", ()))

    def _resync_venue(self, venue_id: int, known: int | None, prev: int) -> None:
        """A batch of this venue was committed but never reached us (or we just connected
        and cannot tell): its feeds catch up from the database before anything newer."""
        if known is not None:
            self.gaps += 1
            log.warning("venue %s feed gap (%s before %s); resyncing", venue_id, known, prev)
        for sub in tuple(self._subs.get(VENUE_PREFIX + str(venue_id), ())):
            sub.deliver(RESYNC)

    def deliver_local(self, channel: str, event: dict) -> None:
        """An event for this process's subscribers of `channel` only (not through Redis):
        what a process computes for its own connections (realtime/occupancy.py)."""
        for sub in tuple(self._subs.get(channel, ())):
            sub.deliver(event)

    def _fan_out(self, events: list[dict]) -> None:
        subs_of = self._subs
        for event in events:
            subs = subs_of.get(VENUE_PREFIX + str(event["venue_id"]))
            if subs:
                for sub in tuple(subs):
                    sub.deliver(event)

    async def _listen(self) -> None:
        backoff = 0.05
        first = True
        while True:
            try:
                # No hidden retries: a broken connection must surface here, so that every
                # connection resyncs from the database after we reconnect.
                self._client = async_client(
                    self.redis_url, retry=Retry(NoBackoff(), 0), socket_timeout=REDIS_TIMEOUT,
                    socket_connect_timeout=CONNECT_TIMEOUT,
                    health_check_interval=HEALTH_CHECK_SECONDS)
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                self._last.clear()  # whatever was published meanwhile, we did not see
                await self._pubsub.subscribe(CHECKINS, ACCESS, *self._subs.keys())
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    self._notify_access(None)
                    log.info("hub reconnected to Redis; resyncing %d connections",
                             self.connections)
                    for sub in {s for subs in self._subs.values() for s in subs}:
                        sub.deliver(RESYNC)
                    # Connections on no channel (the wallboard's) recheck their access too.
                    for sub in {s for held in self._held.values() for s in held
                                if not s.channels}:
                        sub.deliver(RECHECK)
                first = False
                backoff = 0.05
                while True:
                    msg = await self._pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    channel = msg["channel"].decode()
                    if channel == ACCESS:
                        self._access(decode(msg["data"]))
                        continue
                    if channel == CHECKINS:
                        self._checkins(decode(msg["data"]))
                        continue
                    subs = self._subs.get(channel)
                    if not subs:
                        continue
                    data = decode(msg["data"])
                    # A list: events in order (tests and tools may publish a venue's so).
                    events = data if isinstance(data, list) else (data,)
                    for sub in tuple(subs):
                        for event in events:
                            sub.deliver(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._connected.is_set():
                    log.warning("hub lost Redis: %s", exc)
                await self._close()
                first = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
