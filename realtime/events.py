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
# events in id order with each venue's sequence check inside, `venues`: [venue id, prev,
# last] (`prev`: the venue's newest id before the batch, `last`: its newest in the batch). A
# hub whose last seen id of a venue is not `prev` missed a batch of it (its writer died
# between commit and publish, or could not reach Redis) and resyncs that venue's feeds from
# the database first. Every hub takes this channel and hands each event to the feeds of its
# venue: one message instead of one per venue, since a hub's cost is per message. The stays
# the batch's arrivals ended ride in the same message (`checkouts`, handed out after the
# events), not as a message per venue: one PUBLISH a batch.
CHECKINS = "sb:checkins"


def checkin_batch(before: dict[int, int], events: list[dict],
                  checkouts: list[dict] | None = None) -> tuple[str, dict]:
    """The message of a committed batch: `before` maps each venue it wrote to to that
    venue's newest id before it; `events` are in id order; `checkouts`: the checkout events
    of the stays the batch ended (models/stays.py), any venue's."""
    last: dict[int, int] = {}
    for event in events:
        last[event["venue_id"]] = event["id"]
    message = {"type": "checkins",
               "venues": [[venue, before[venue], newest] for venue, newest in last.items()],
               "events": events}
    if checkouts:
        message["checkouts"] = checkouts
    return CHECKINS, message


# Access may have ended (a registrar turned non-green, got a violation, was removed from a
# venue or left it): every hub hands its feeds of these venues, and every feed held by these
# citizens, a recheck, and each such feed asks the database whether its holder may still
# watch it (closing 4403 when not). Published after the commit, on a channel every hub takes,
# like every other doorbell. A hub that was cut off from Redis rechecks all its feeds when it
# reconnects (its RESYNC), so a message it missed meanwhile is made up for.
ACCESS = "sb:access"


def access_message(*, venues: Iterable[int] = (), citizens: Iterable[int] = (),
                   officials: Iterable[int] = (), tokens: Iterable[str] = ()
                   ) -> tuple[str, dict]:
    """`officials`: their connections recheck too; `tokens`: hashes of citizens' bearer tokens
    that were revoked (every process's token cache forgets them first: web/sessions.py)."""
    event = {"type": "access", "venues": sorted(set(venues)),
             "citizens": sorted(set(citizens))}
    if officials:
        event["officials"] = sorted(set(officials))
    if tokens:
        event["tokens"] = sorted(set(tokens))
    return ACCESS, event


def access_changed(client: redis.Redis, *, venues: Iterable[int] = (),
                   citizens: Iterable[int] = ()) -> bool:
    """After a commit that may have ended someone's access to live feeds: every feed of
    `venues` and every feed held by one of `citizens`, on every web process, rechecks its
    holder's access against the database and closes 4403 if it is gone (realtime/feed.py)."""
    channel, event = access_message(venues=venues, citizens=citizens)
    if not event["venues"] and not event["citizens"]:
        return True
    return publish(client, [(channel, event)])


def checkout_messages(events: list[dict]) -> list[tuple[str, list[dict]]]:
    """Checkout events (models/stays.py) as one message a venue: a list, in order, on the
    venue's channel. Not numbered: a feed that misses one (Redis away) still shows the right
    occupancy with the next `occupancy` event."""
    by_venue: dict[int, list[dict]] = {}
    for event in events:
        by_venue.setdefault(event["venue_id"], []).append(event)
    return [(venue_channel(venue_id), items) for venue_id, items in by_venue.items()]


def encode(event: dict) -> bytes:
    return orjson.dumps(event)


def decode(data: bytes | str) -> dict:
    return orjson.loads(data)


def publish(client: redis.Redis, items: Iterable[tuple[str, dict]], *, attempts: int = 3
            ) -> bool:
    """Publish (channel, event) pairs in order, in one round trip.

    The database already holds every event (it is the source of truth), so a failure here
    loses nothing: subscribers whose Redis connection broke resync from the database when it
    comes back. A few quick retries cover a blip without holding a feed lock for long.
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
