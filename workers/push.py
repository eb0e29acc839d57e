"""Jobs that carry notices to citizens whose page is closed (docs/push.md): Web Push to their
browsers, and for a change to red or yellow an SMS to those no browser could be reached at.

Queued after the commit by whoever wrote the notices (workers/status.py's publish_outcome,
the itinerary callback, an announcement). Queuing never fails the change: a Redis error is
logged and the notice stays on the citizen's page. A push the service cannot take now (429,
5xx, no answer) is tried again later (BACKOFF); 404/410 forget the subscription; another 4xx
is given up (retrying the same request cannot help). Jobs take ids and reload the rows.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import redis
from sqlalchemy import select
from sqlalchemy.engine import Connection

from models import alerts
from models.errors import DomainError, ValidationFailed
from models.push import drop_endpoints, subscription_ids, subscription_rows, subscriptions_of
from models.tables import Citizen, Notice
from models.timeutil import iso
from realtime import webpush
from realtime.sms import load_gateway, mask_phone, normalize_phone
from workers.context import resources
from workers.queues import enqueue, enqueue_in

log = logging.getLogger("scanbook.push")

TTL = 86400  # a push service keeps a notice a day for a phone that is off
BACKOFF = [30, 120, 600]  # seconds before each retry of pushes the service could not take
MAX_WAIT = 3600  # a Retry-After longer than this is not waited for
FAN_OUT = 500  # an announcement's subscriptions per job
SENDERS = 16  # pushes in flight at once in a job (the wait is the push service's answer)
SMS_ONCE = 7 * 86400  # a person gets one SMS per batch (per notice without one) in this time

_n = Notice.__table__
_c = Citizen.__table__


def queue_status_pushes(client: redis.Redis, notice_ids: list[int]) -> None:
    """After the commit of status notices: push them (never raises; the notices are on the
    citizens' pages whatever happens here)."""
    _queue(client, "workers.push.push_status", [int(i) for i in notice_ids])


def queue_announcement(client: redis.Redis, notice_id: int) -> None:
    """After the commit of an announcement: push it to every subscription."""
    _queue(client, "workers.push.push_announcement", int(notice_id))


def _queue(client: redis.Redis, func: str, arg: object) -> None:
    if not arg:
        return
    try:
        enqueue(client, func, arg)
    except (redis.RedisError, OSError) as exc:
        log.warning("%s not queued: %s", func, type(exc).__name__)


@lru_cache(maxsize=2)
def _keys(data_dir: Path) -> webpush.VapidKeys:
    return webpush.load_keys(data_dir)


def _payload(row) -> tuple[bytes, str, str | None]:
    """(encoded payload, urgency, topic) of a notice row."""
    if row.kind == "status":
        payload = alerts.status_payload(notice_id=row.id, status=row.status,
                                        popup_kind=row.popup_kind, at=iso(row.at))
        return alerts.encode(payload), alerts.urgency(row.status), "status"
    payload = alerts.notice_payload(notice_id=row.id, text=row.text or "", at=iso(row.at))
    return alerts.encode(payload), alerts.urgency(None), None


def _notices(conn: Connection, ids: list[int]) -> dict[int, object]:
    return {row.id: row for row in conn.execute(select(_n).where(_n.c.id.in_(ids)))}


def deliver(pairs: list[list[int]], attempt: int = 0) -> dict:
    """Push each [notice id, subscription id]; what the service could not take now is
    queued again after BACKOFF[attempt] seconds (or its Retry-After)."""
    summary, _reached = _deliver(pairs, attempt)
    return summary


def _deliver(pairs: list[list[int]], attempt: int) -> tuple[dict, set[int]]:
    """The job's summary, and the citizens reached: a push of theirs was taken, or will be
    tried again (not when every subscription of theirs is gone or refused for good)."""
    settings, engine, client, _lock = resources()
    with engine.connect() as conn:
        notices = _notices(conn, sorted({n for n, _s in pairs}))
        subs = {row.id: row for row in subscription_rows(conn, sorted({s for _n, s in pairs}))}
    tally: Counter[str] = Counter()
    work = []
    for notice_id, sub_id in pairs:
        notice, sub = notices.get(notice_id), subs.get(sub_id)
        if notice is None or sub is None:  # deleted since (retention, unsubscribed, gone)
            tally["skipped"] += 1
        elif notice.citizen_id is not None and notice.citizen_id != sub.citizen_id:
            tally["skipped"] += 1  # the browser changed hands since: not theirs to see
        else:
            work.append((notice, sub))
    gone, again, reached = [], [], set()
    for (notice, sub), result in zip(work, _send(settings, work), strict=True):
        tally[result.outcome.value] += 1
        if result.outcome is webpush.Outcome.GONE:
            gone.append(sub.id)
        elif result.outcome is webpush.Outcome.RETRY:
            again.append(([notice.id, sub.id], result.retry_after))
        if result.outcome in (webpush.Outcome.SENT, webpush.Outcome.RETRY):
            reached.add(sub.citizen_id)  # it arrived, or may yet
    if gone:
        with engine.begin() as conn:
            drop_endpoints(conn, gone)
    waited = _again(client, again, attempt)
    return {**tally, "retrying": len(again), "retry_in": waited}, reached


def _send(settings, work: list[tuple]) -> list[webpush.Result]:
    """Send in SENDERS threads, each with its own keep-alive session: a push service answers
    in tens of milliseconds, and encrypting and signing one costs ~2 ms here."""
    keys = _keys(settings.data_dir)
    encoded = {notice.id: _payload(notice) for notice, _sub in work}
    local = threading.local()
    sessions = []

    def one(item) -> webpush.Result:
        notice, sub = item
        if not hasattr(local, "http"):
            local.http = webpush.session()
            sessions.append(local.http)
        data, urgency, topic = encoded[notice.id]
        return webpush.send(local.http, endpoint=sub.endpoint, p256dh=sub.p256dh,
                            auth=sub.auth, data=data, keys=keys,
                            subject=settings.vapid_subject, ttl=TTL, urgency=urgency,
                            topic=topic)

    try:
        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            return list(pool.map(one, work))
    finally:
        for http in sessions:
            http.close()


def _again(client: redis.Redis, again: list, attempt: int) -> int | None:
    if not again:
        return None
    pairs = [pair for pair, _after in again]
    if attempt >= len(BACKOFF):
        log.warning("%d pushes given up after %d tries", len(pairs), attempt + 1)
        return None
    wait = max([BACKOFF[attempt], *(a for _p, a in again if a)])
    enqueue_in(client, min(wait, MAX_WAIT), "workers.push.deliver", pairs, attempt + 1)
    return min(wait, MAX_WAIT)


def push_status(notice_ids: list[int]) -> dict:
    """Push status notices to their citizens' browsers; SMS to those changed to red or
    yellow whom no browser reaches."""
    settings, engine, client, _lock = resources()
    with engine.connect() as conn:
        notices = [row for row in _notices(conn, notice_ids).values() if row.kind == "status"]
        subs = subscriptions_of(conn, sorted({row.citizen_id for row in notices}))
    pairs = [[row.id, sub.id] for row in sorted(notices, key=lambda r: r.id)
             for sub in subs.get(row.citizen_id, [])]
    result, reached = _deliver(pairs, 0) if pairs else ({}, set())
    urgent = [row for row in notices
              if row.status in alerts.URGENT and row.citizen_id not in reached]
    return {"notices": len(notices), **result, "sms": _sms(settings, engine, client, urgent)}


def _sms(settings, engine, client: redis.Redis, notices: list) -> dict:
    """One SMS per person per batch: a person twice in one bulk job (or a job run again) is
    told once, of the status they have when it is sent (the newest). The key is taken before
    sending and given back if sending fails."""
    tally: Counter[str] = Counter()
    if not notices:
        return dict(tally)
    with engine.connect() as conn:
        now = {row.id: row for row in conn.execute(select(_c.c.id, _c.c.phone, _c.c.status)
                                                   .where(_c.c.id.in_(sorted(
                                                       {n.citizen_id for n in notices}))))}
    gateway = load_gateway(settings, client)
    for row in notices:
        person = now.get(row.citizen_id)
        if person is None or person.status not in alerts.URGENT:
            tally["no_longer"] += 1  # changed again since (or gone): nothing to tell
            continue
        try:
            phone = normalize_phone(person.phone or "")
        except ValidationFailed:
            tally["no_phone"] += 1
            continue
        once = f"sb:sms:notice:{row.batch_id or f'n{row.id}'}:{row.citizen_id}"
        if not client.set(once, 1, nx=True, ex=SMS_ONCE):
            tally["already"] += 1
            continue
        try:
            gateway.send_notice(phone, alerts.sms_text(person.status, settings.public_url))
            tally["sent"] += 1
        except (DomainError, OSError) as exc:
            client.delete(once)
            log.warning("SMS notice to %s not sent: %s", mask_phone(phone), exc)
            tally["failed"] += 1
    return dict(tally)


def push_announcement(notice_id: int) -> dict:
    """Fan an announcement out: one delivery job per FAN_OUT subscriptions."""
    _settings, engine, client, _lock = resources()
    jobs = after = 0
    while True:
        with engine.connect() as conn:
            ids = subscription_ids(conn, after=after, limit=FAN_OUT)
        if not ids:
            break
        enqueue(client, "workers.push.deliver", [[notice_id, sid] for sid in ids])
        jobs, after = jobs + 1, ids[-1]
    return {"notice_id": notice_id, "jobs": jobs}
