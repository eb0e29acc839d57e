"""The stay-expiry job: stays nobody ended close at their venue's max_stay_minutes."""

from __future__ import annotations

from models.stays import close_expired_stays
from models.tables import utcnow
from realtime.events import checkout_messages, publish
from workers.context import resources


def close_expired() -> dict:
    """Run every minute by the cron scheduler (workers.schedule); idempotent. Writes each
    expired stay's departure (arrival + the venue's limit) and tells the venues' feeds."""
    _settings, engine, client, _lock = resources()
    events = close_expired_stays(engine.begin, now=utcnow())
    publish(client, checkout_messages(events))
    return {"closed": len(events)}
