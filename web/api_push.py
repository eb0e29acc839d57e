"""Web Push subscriptions (docs/push.md): the server's public VAPID key for the page, and a
citizen's browsers subscribing and unsubscribing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.push import clean_subscription, my_subscriptions, subscribe, unsubscribe
from models.tables import utcnow
from web.auth import require
from web.common import in_session
from web.responses import JSON, read_json


async def push_key(request: Request) -> Response:
    """GET /api/push/key: the applicationServerKey a browser subscribes with."""
    return JSON({"public_key": request.app.state.vapid.public_key})


async def subscriptions_list(request: Request) -> Response:
    """GET /api/me/push-subscriptions: my browsers that get notifications."""
    principal = await require(request, "citizen")
    items = await in_session(request, lambda session: my_subscriptions(
        session.connection(), citizen_id=principal.citizen_id))
    return JSON({"items": items})


async def subscriptions_add(request: Request) -> Response:
    """POST /api/me/push-subscriptions {endpoint, keys: {p256dh, auth}}: this browser gets my
    notifications (201; 200 when it already did)."""
    principal = await require(request, "citizen")
    settings = request.app.state.settings
    sub = clean_subscription(await read_json(request), hosts=settings.push_hosts,
                             production=settings.production)

    def add(session):
        item, new = subscribe(session.connection(), citizen_id=principal.citizen_id, sub=sub,
                              now=utcnow())
        session.commit()
        return item, new

    item, new = await in_session(request, add)
    return JSON(item, status_code=201 if new else 200)


async def subscriptions_remove(request: Request) -> Response:
    """DELETE /api/me/push-subscriptions/{id}: no more notifications to that browser."""
    principal = await require(request, "citizen")

    def remove(session):
        unsubscribe(session.connection(), citizen_id=principal.citizen_id,
                    subscription_id=request.path_params["id"])
        session.commit()

    await in_session(request, remove)
    return Response(status_code=204)


routes = [
    Route("/api/push/key", push_key, methods=["GET"]),
    Route("/api/me/push-subscriptions", subscriptions_list, methods=["GET"]),
    Route("/api/me/push-subscriptions", subscriptions_add, methods=["POST"]),
    Route("/api/me/push-subscriptions/{id:int}", subscriptions_remove, methods=["DELETE"]),
]
