"""WebSocket endpoints: a venue's live feed for its registrars; a citizen's own notices;
the officials' wallboard."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable

from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from models.checkins import checkins_after
from models.crowding import district_view
from models.errors import DomainError, NotFound
from models.notices import notices_after, notices_head
from models.tables import Checkin
from models.venues import get_venue, require_feed_access
from realtime.events import ALL_CITIZENS, citizen_channel, venue_channel
from realtime.feed import serve_feed
from realtime.hub import official_holder
from realtime.wallboard import serve_wallboard
from web.auth import Principal, authenticate, still_signed_in

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_BAD_REQUEST = 1008


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Accept, then close with the contract's code (a close before accept is a bare 403)."""
    await websocket.accept()
    await websocket.close(code=code, reason=reason)


# `after` is an id: ASCII digits only (int() would also take "+1", "1_0", " 1" and other
# scripts' digits), and no larger than the feed's id column holds, so the replay query can
# always run (a number past it failed the query with a traceback and dropped the socket).
_AFTER = re.compile(r"[0-9]{1,19}")
MAX_CHECKIN_ID = 2**62  # check-in ids are 64-bit; web.responses.int_query's bound
MAX_NOTICE_ID = 2**31 - 1  # notice ids are 32-bit integers in PostgreSQL


def parse_after(websocket: WebSocket, high: int) -> int | None | bool:
    """The `after` query parameter: None when absent, False when it is not an id <= high."""
    raw = websocket.query_params.get("after")
    if raw in (None, ""):
        return None
    if not _AFTER.fullmatch(raw):
        return False
    value = int(raw)
    return value if value <= high else False


async def venue_feed(websocket: WebSocket) -> None:
    principal = await authenticate(websocket)
    if principal is None:
        return await refuse(websocket, CLOSE_UNAUTHENTICATED, "unauthenticated")
    venue_id = websocket.path_params["id"]
    after = parse_after(websocket, MAX_CHECKIN_ID)
    if after is False:
        return await refuse(websocket, CLOSE_BAD_REQUEST, "after must be a check-in id")
    engine = websocket.app.state.engine
    from sqlmodel import Session

    def check() -> tuple[int, str] | None:
        with Session(engine) as session:
            try:
                if principal.official:  # officials watch their district's venues (city: all)
                    if not principal.covers(get_venue(session, venue_id).district):
                        return CLOSE_FORBIDDEN, "outside your district"
                else:
                    require_feed_access(session, venue_id=venue_id,
                                        citizen_id=principal.citizen_id)
            except NotFound:
                return CLOSE_NOT_FOUND, "venue not found"
            except DomainError:  # not a registrar here, not green, or suspended
                return CLOSE_FORBIDDEN, "not on duty at this venue"
        return None

    async def recheck() -> tuple[int, str] | None:
        if not await still_signed_in(websocket, principal):
            return CLOSE_UNAUTHENTICATED, "session ended"
        return await run_in_threadpool(check)

    def _replay(last: int, limit: int) -> list[dict]:
        with engine.connect() as conn:
            return checkins_after(conn, venue_id=venue_id, after=last, limit=limit)

    async def replay(last: int, limit: int) -> list[dict]:
        return await run_in_threadpool(_replay, last, limit)

    def _head() -> int:
        with engine.connect() as conn:
            return conn.execute(
                select(func.coalesce(func.max(Checkin.id), 0)).where(Checkin.venue_id == venue_id)
            ).scalar_one()

    async def head() -> int:
        return await run_in_threadpool(_head)

    # Access is checked inside serve_feed, once subscribed (a refusal closes 4404/4403 there),
    # and again on every access change that names this venue or this registrar.
    await websocket.accept()
    # occupancy events while the feed is open (GET /api/venues/{id} has the count now)
    async with websocket.app.state.occupancy.watch(venue_id):
        await serve_feed(websocket, websocket.app.state.hub, (venue_channel(venue_id),),
                         after=after, replay=replay, head=head,
                         holder=holder_of(principal), recheck=recheck)


async def my_notices(websocket: WebSocket) -> None:
    """/ws/me?after=<notice id>: a citizen's status changes and announcements, live and
    resumable (replay after `after`, then live; nothing lost, nothing twice)."""
    principal = await authenticate(websocket)
    if principal is None:
        return await refuse(websocket, CLOSE_UNAUTHENTICATED, "unauthenticated")
    if principal.official:
        return await refuse(websocket, CLOSE_FORBIDDEN, "citizens only")
    after = parse_after(websocket, MAX_NOTICE_ID)
    if after is False:
        return await refuse(websocket, CLOSE_BAD_REQUEST, "after must be a notice id")
    engine = websocket.app.state.engine
    citizen_id = principal.citizen_id

    def _replay(last: int, limit: int) -> list[dict]:
        with engine.connect() as conn:
            return notices_after(conn, citizen_id=citizen_id, after=last, limit=limit)

    async def replay(last: int, limit: int) -> list[dict]:
        return await run_in_threadpool(_replay, last, limit)

    def _head() -> int:
        with engine.connect() as conn:
            return notices_head(conn, citizen_id=citizen_id)

    async def head() -> int:
        return await run_in_threadpool(_head)

    async def recheck() -> tuple[int, str] | None:
        if not await still_signed_in(websocket, principal):
            return CLOSE_UNAUTHENTICATED, "session ended"
        return None

    await websocket.accept()
    await serve_feed(websocket, websocket.app.state.hub,
                     (citizen_channel(citizen_id), ALL_CITIZENS),
                     after=after, replay=replay, head=head, holder=citizen_id,
                     recheck=recheck)


async def wallboard(websocket: WebSocket) -> None:
    """/ws/wallboard: officials only; crowding frames at least once a second (the process's
    one aggregator, realtime/wallboard.py; nothing is queried per connection)."""
    principal = await authenticate(websocket)
    if principal is None:
        return await refuse(websocket, CLOSE_UNAUTHENTICATED, "unauthenticated")
    if not principal.official:
        return await refuse(websocket, CLOSE_FORBIDDEN, "officials only")
    view = None
    if principal.district is not None:
        district = principal.district

        def view(frame: dict) -> dict:
            return district_view(frame, district)

    await websocket.accept()
    # On no channel: the hub only hands this connection access rechecks (a session ended).
    async with websocket.app.state.hub.subscribe(holder=holder_of(principal)) as sub:
        sub.on_deliver = _on_recheck(websocket, principal, sub)
        await serve_wallboard(websocket, websocket.app.state.wallboard, view)


_rechecks: set[asyncio.Task] = set()


def _on_recheck(websocket: WebSocket, principal: Principal, sub) -> Callable[[], None]:
    """A wallboard's answer to an access recheck: close 4401 once its caller's session (or
    account) has ended."""
    async def run() -> None:
        sub.take()
        if not await still_signed_in(websocket, principal):
            with contextlib.suppress(RuntimeError, OSError):
                await websocket.close(code=CLOSE_UNAUTHENTICATED, reason="session ended")

    def deliver() -> None:
        task = asyncio.get_running_loop().create_task(run())
        _rechecks.add(task)
        task.add_done_callback(_rechecks.discard)

    return deliver


def holder_of(principal: Principal) -> int | str:
    """The key the hub files a caller's connections under (access rechecks reach them)."""
    return official_holder(principal.id) if principal.official else principal.id


routes = [
    WebSocketRoute("/ws/venues/{id:int}/feed", venue_feed),
    WebSocketRoute("/ws/me", my_notices),
    WebSocketRoute("/ws/wallboard", wallboard),
]
