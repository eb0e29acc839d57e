"""Channel names, orjson encoding, and publishing (always after the database commit)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import orjson
import redis

log = logging.getLogger("scanbook.events")

ALL_CITIZENS = "sb:citizens"  # announcements to every /ws/me


def venue_channel(venue_id: int) -> str:
    return f"sb:venue:{venue_id}"


def citizen_channel(citizen_id: int) -> str:
    return f"sb:citizen:{citizen_id}"


# Check-ins travel as one message per committed batch, whatever its venues: the batch's
# events in id order with the sequence check inside (`prev`: the newest id before the batch,
# `last`: its own newest). Every hub takes this channel and hands each event to the feeds of
# its venue. One message instead of one per venue plus a sequence message: a hub's cost is per
# message (bench/README.md), and a batch of a busy minute spans every venue.
CHECKINS = "sb:checkins"


def checkin_batch(prev: int, events: list[dict]) -> tuple[str, dict]:
    return CHECKINS, {"type": "checkins", "prev": prev, "last": events[-1]["id"],
                      "events": events}


def encode(event: dict) -> bytes:
    return orjson.dumps(event)


def decode(data: bytes | str) -> dict:
    return orjson.loads(data)


def publish(client: redis.Redis, items: Iterable[tuple[str, dict]], *, attempts: int = 3
            ) -> bool:
    """Publish (channel, event) pairs in order, in one round trip.

    The database already holds every event (it is the source of truth), so a failure here
    loses nothing: subscribers whose Redis connection broke resync from the database when it
    comes back. A few quick retries cover a blip without holding the feed lock for long.
    """
    items = list(items)
    if not items:
        return True
    commands = [("PUBLISH", channel, encode(event)) for channel, event in items]
    pool = client.connection_pool
    for attempt in range(attempts):
        conn = None
        try:
            conn = pool.get_connection()
            conn.send_packed_command(conn.pack_commands(commands))
            for _ in commands:
                conn.read_response()
            return True
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            if conn is not None:
                conn.disconnect()
            log.warning("publish failed (attempt %d): %s", attempt + 1, exc)
            time.sleep(0.05 * (attempt + 1))
        except BaseException:
            if conn is not None:  # replies may be left unread: the connection is unusable
                conn.disconnect()
            raise
        finally:
            if conn is not None:
                pool.release(conn)
    return False
