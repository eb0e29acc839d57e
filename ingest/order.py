"""Each venue's check-ins reach its feeds in id order, and writers of different venues never
wait for each other.

A feed only needs its own venue's order: a client that resumes with the last id it saw must
never find a lower id of that venue committed after it. So a writer holds a lock per venue
from before its rows get their ids until Redis has taken their PUBLISH, and reads each
venue's newest id under it: the batch's `prev` per venue, which the hubs check
(realtime/hub.py) to find a batch that never reached them.

- PostgreSQL: a session advisory lock per venue, `(CHECKIN_LOCK, venue_id)`, on the writer's
  own connection. Kept from batch to batch while the PUBLISH replies are on their way; a
  batch that needs a venue not yet held tries for it without waiting, and only when another
  writer has it lets go of everything (once its own PUBLISHes are in) and waits for the
  batch's venues in id order, so two writers never wait for each other in a circle. The try
  and the newest ids go in one round trip (psycopg's pipeline mode).
- SQLite: one writer at a time anyway (its write lock), so one flock beside the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.engine import Connection, Engine

from models.checkins import newest_ids, newest_ids_by_venue, newest_ids_statement
from models.db import CHECKIN_LOCK, FeedLock

log = logging.getLogger("scanbook.ingest")


class VenueOrder:
    """The feed order of the venues a writer writes to (see the module's docstring)."""

    def __init__(self, engine: Engine, wait_for_replies: Callable[[], None]):
        self.postgres = engine.dialect.name == "postgresql"
        # Called before this writer lets go of its venues: its PUBLISHes must be in Redis
        # before another writer's batch of the same venue can follow them.
        self._wait_for_replies = wait_for_replies
        self._lock = None if self.postgres else FeedLock(engine, CHECKIN_LOCK)
        self._held: set[int] = set()  # PostgreSQL: the venues this connection holds
        # PostgreSQL: each held venue's newest id. Read once when the venue is taken; while
        # held nobody else writes to it, so the batches' own inserts keep it (inserted()).
        # Reading it every batch cost a probe of every partition's index per venue.
        self._newest: dict[int, int] = {}
        self._sqlite_held = False
        self.waits = 0  # PostgreSQL: batches that had to wait for another writer's venue

    @property
    def holding(self) -> bool:
        return bool(self._held) or self._sqlite_held

    def start(self, conn: Connection) -> None:
        """Before the batch's first statement. SQLite: take the one lock."""
        if not self.postgres and not self._sqlite_held:
            self._lock.acquire(conn)
            self._sqlite_held = True

    def take(self, conn: Connection, venues: list[int]) -> dict[int, int]:
        """Hold these venues (sorted) for the batch; their newest ids, read under the locks."""
        if not self.postgres:
            return newest_ids_by_venue(conn, venues)
        missing = [v for v in venues if v not in self._held]
        if missing:
            got, newest = self._lock_and_read(conn, missing, wait=False)
            for venue, ok in got:
                if ok:
                    self._held.add(venue)
                    self._newest[venue] = newest[venue]
            if not all(ok for _, ok in got):
                # Another writer has one of them: let go of ours, wait for the batch's, in
                # order.
                self.waits += 1
                self._wait_for_replies()
                self._unlock_all(conn)
                _, newest = self._lock_and_read(conn, venues, wait=True)
                self._held.update(venues)
                self._newest.update(newest)
        return {venue: self._newest[venue] for venue in venues}

    def inserted(self, events: list[dict]) -> None:
        """The batch's new check-ins (in id order): the newest ids of the venues held."""
        if self.postgres:
            for event in events:
                self._newest[event["venue_id"]] = event["id"]

    def release(self, conn: Connection | None) -> None:
        """Let go of every venue (after the batch's transaction ended and its PUBLISHes are
        in: BatchWriter.settle)."""
        if self._sqlite_held:
            self._sqlite_held = False
            self._lock.release(conn)
        if self._held and conn is not None:
            raw = conn.connection.dbapi_connection
            raw.autocommit = True  # one round trip, outside any transaction
            try:
                raw.execute("SELECT pg_advisory_unlock_all()")
            finally:
                if not raw.closed:
                    raw.autocommit = False
            self._held.clear()  # not before: a failed unlock leaves them to the connection
            self._newest.clear()

    def forget(self) -> None:
        """The connection is gone, and its locks with it."""
        self._held.clear()
        self._newest.clear()

    def _lock_and_read(self, conn: Connection, venues: list[int], *, wait: bool
                       ) -> tuple[list[tuple[int, bool]], dict[int, int]]:
        """Lock `venues` (waiting, or trying), then read their newest ids: one round trip.
        Inside the batch's transaction: session locks outlive its commit."""
        if not conn.in_transaction():
            conn.begin()
        raw = conn.connection.dbapi_connection
        function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        locking, reading = raw.cursor(), raw.cursor()
        try:
            with raw.pipeline():
                # unnest keeps the array's order: waiting locks are taken in id order. (As
                # text: the try answers true or false, the wait answers void, '' here.)
                locking.execute(f"SELECT v, {function}({CHECKIN_LOCK}, v)::text "
                                "FROM unnest(%s::int[]) AS v", (venues,))
                reading.execute(*newest_ids_statement("postgresql", venues))
            return ([(v, ok != "false") for v, ok in locking.fetchall()],
                    newest_ids(reading.fetchall()))
        finally:
            locking.close()
            reading.close()

    def _unlock_all(self, conn: Connection) -> None:
        """Inside the batch's transaction (the look-ups ran): no autocommit here."""
        conn.connection.dbapi_connection.execute("SELECT pg_advisory_unlock_all()")
        self._held.clear()
        self._newest.clear()
