"""Health-authority endpoints (official token): citizens, status changes, exposures,
violations and their lifting, jobs, the audited trace, the audit log, announcements, and
citizens' messages."""

from __future__ import annotations

from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models import audit
from models.audit import clean_purpose, list_audit, record, trace
from models.citizens import create_citizen, is_minor
from models.crypto import id_lookup
from models.districts import people_outside, registrar_in, venue_district
from models.errors import Forbidden, NotFound, ValidationFailed
from models.health import exposure_payload
from models.idnumber import parse_id_number
from models.masking import mask_id_number, mask_name
from models.messages import list_messages, set_handled
from models.messages import reply as reply_message
from models.notices import announcements, clean_text, insert_announcement
from models.officials import Permission
from models.preview import preview_exposure, preview_status_changes
from models.tables import Batch, Violation, utcnow
from models.timeutil import iso, parse_iso
from models.undo import undoable_batch
from models.violations import (
    create_violation,
    lift_violation,
    list_violations,
    violation_public,
)
from realtime.events import ALL_CITIZENS
from web.auth import Principal, require_district, require_official
from web.common import in_session, write_then_publish
from web.responses import JSON, int_query, read_json
from workers.push import queue_announcement
from workers.queues import enqueue, job_state

MAX_CHANGES = 100_000
# Batches this small (a few people, typically registrars) jump the queue: a registrar's
# revocation must not wait behind a 100,000-row exposure that was queued first.
URGENT_ROWS = 1000


def client_detail(request: Request) -> dict:
    """Where a request came from, for the audit (never who: that is the principal)."""
    return {"ip": request.client.host if request.client else None,
            "user_agent": request.headers.get("user-agent", "")[:200]}


async def citizens_create(request: Request) -> Response:
    principal = await require_official(request, Permission.ACT)
    body = await read_json(request)

    def create(session):
        citizen, token = create_citizen(session, name=body.get("name"),
                                        id_number=body.get("id_number"),
                                        phone=body.get("phone"))
        record(session, actor=principal.audit_actor, action=audit.CITIZEN_CREATE,
               target=mask_id_number(citizen.id_number), citizen_id=citizen.id,
               detail=client_detail(request))
        session.commit()
        return citizen, token

    citizen, token = await in_session(request, create)
    return JSON({"id": citizen.id, "token": token, "name_masked": mask_name(citizen.name),
                 "id_masked": mask_id_number(citizen.id_number), "minor": is_minor(citizen),
                 "status": citizen.status}, status_code=201)


async def enqueue_batch(request: Request, principal: Principal, kind: str, payload: dict,
                        job: str, *, action: str, purpose: str = "",
                        citizen_id: int | None = None, detail: dict | None = None,
                        district: str | None = None, urgent: bool = False) -> dict:
    """Store the request as a batch, with its audit row in the same transaction, then
    enqueue the job that carries it out by id."""

    def save(session):
        batch = Batch(kind=kind, actor=principal.actor, payload=payload,
                      district=district if district is not None else principal.district)
        session.add(batch)
        session.flush()
        record(session, actor=principal.audit_actor, action=action, target=f"batch:{batch.id}",
               citizen_id=citizen_id, purpose=purpose,
               detail={**(detail or {}), **client_detail(request), "batch_id": batch.id})
        session.commit()
        return batch.id

    batch_id = await in_session(request, save)
    queued = enqueue(request.app.state.redis, job, batch_id, at_front=urgent)

    def link(session):
        row = session.get(Batch, batch_id)
        row.job_id = queued.id
        session.add(row)
        session.commit()

    await in_session(request, link)
    return {"job_id": queued.id, "batch_id": batch_id}


def _district_rows(session, changes: list, district: str) -> list[int]:
    """Indices of rows naming registered people who are not of `district`."""
    hashes: dict[int, str] = {}
    for index, row in enumerate(changes):
        try:
            hashes[index] = id_lookup(parse_id_number(row.get("id_number")).value)
        except Exception:  # a malformed row: the job reports it, as for anyone
            continue
    outside = people_outside(session, list(set(hashes.values())), district)
    return [index for index, h in hashes.items() if h in outside]


async def _changes(request: Request) -> tuple[Principal, list]:
    """The caller and the body of a status-change batch (or its preview): 1–MAX_CHANGES
    rows, of the caller's district when they have one."""
    principal = await require_official(request, Permission.ACT)
    changes = (await read_json(request)).get("changes")
    if not isinstance(changes, list) or not changes:
        raise ValidationFailed("changes 须为非空数组 / changes must be a non-empty array")
    if len(changes) > MAX_CHANGES:
        raise ValidationFailed(f"每批最多 {MAX_CHANGES} 行 / at most {MAX_CHANGES} rows a batch")
    if principal.district is not None:
        rows = [row if isinstance(row, dict) else {} for row in changes]
        outside = await in_session(request, _district_rows, rows, principal.district)
        if outside:
            raise Forbidden(f"第 {outside[0]} 行等 {len(outside)} 人不属本辖区 / {len(outside)} "
                            f"row(s) name people outside your district ({principal.district})",
                            detail={"rows": outside[:100]})
    return principal, changes


async def status_changes(request: Request) -> Response:
    principal, changes = await _changes(request)
    reasons = sorted({str(r.get("reason", ""))[:100] for r in changes if isinstance(r, dict)})
    return JSON(await enqueue_batch(
        request, principal, "status_changes", {"changes": changes},
        "workers.status.apply_status_changes", action=audit.STATUS_CHANGES,
        purpose="; ".join(reasons[:5])[:500], detail={"rows": len(changes)},
        urgent=len(changes) <= URGENT_ROWS), status_code=202)


async def status_changes_preview(request: Request) -> Response:
    """POST /api/admin/status-changes/preview: what the batch would do now; writes nothing.
    200 {total, changed, kept, not_found, invalid}."""
    _principal, changes = await _changes(request)
    return JSON(await in_session(request, lambda session: preview_status_changes(
        session.connection(), changes)))


async def _exposure(request: Request) -> tuple[Principal, dict, str]:
    """The caller, the body of an exposure (or its preview) and its venue's district, which
    must be the caller's when they have one."""
    principal = await require_official(request, Permission.ACT)
    payload = exposure_payload(await read_json(request))

    def venue(session) -> str:
        district = venue_district(session, payload["venue_id"])
        if district is None:
            raise NotFound("场所不存在 / venue not found")
        return district

    district = await in_session(request, venue)
    require_district(principal, district)
    return principal, payload, district


async def exposures(request: Request) -> Response:
    principal, payload, district = await _exposure(request)
    return JSON(await enqueue_batch(
        request, principal, "exposure", payload, "workers.status.apply_exposure",
        action=audit.EXPOSURE, purpose=str(payload.get("reason", "")), district=district,
        detail={"venue_id": payload["venue_id"], "status": payload.get("status"),
                "start": payload.get("start"), "end": payload.get("end")}), status_code=202)


async def exposures_preview(request: Request) -> Response:
    """POST /api/admin/exposures/preview: whom the exposure would change or keep now; writes
    nothing. 200 {total, changed, kept, not_found, unregistered}."""
    _principal, payload, _district = await _exposure(request)
    return JSON(await in_session(request, lambda session: preview_exposure(
        session.connection(), payload)))


async def _registrar_guard(request: Request, principal: Principal, citizen_id: object) -> None:
    """A district official acts only on registrars all of whose venues are in the
    district (models/districts.py)."""
    if principal.district is None or not isinstance(citizen_id, int):
        return
    if not await in_session(request, registrar_in, citizen_id, principal.district):
        raise Forbidden(f"该登记人的场所不全在本辖区 / this registrar's venues are not all in "
                        f"your district ({principal.district})")


async def violations_create(request: Request) -> Response:
    principal = await require_official(request, Permission.ACT)
    body = await read_json(request)
    await _registrar_guard(request, principal, body.get("citizen_id"))
    violation = await in_session(request, create_violation, citizen_id=body.get("citizen_id"),
                                 reason=body.get("reason"), actor=principal.actor)
    queued = await enqueue_batch(request, principal, "violation",
                                 {"violation_id": violation.id}, "workers.status.apply_violation",
                                 action=audit.VIOLATION, purpose=violation.reason,
                                 citizen_id=violation.citizen_id,
                                 detail={"violation_id": violation.id}, urgent=True)
    return JSON({**queued, "violation_id": violation.id,
                 "violation": violation_public(violation)}, status_code=202)


async def violations_lift(request: Request) -> Response:
    """POST /api/admin/violations/{id}/lift (or DELETE /api/admin/violations/{id})."""
    principal = await require_official(request, Permission.ACT)
    body = await read_json(request) if await request.body() else {}

    def owner(session) -> int:
        found = session.get(Violation, request.path_params["id"])
        if found is None:
            raise NotFound("违规记录不存在 / violation not found")
        return found.citizen_id

    await _registrar_guard(request, principal, await in_session(request, owner))
    violation = await in_session(request, lift_violation,
                                 violation_id=request.path_params["id"], actor=principal.actor,
                                 reason=body.get("reason"))
    queued = await enqueue_batch(request, principal, "lift", {"violation_id": violation.id},
                                 "workers.status.lift_violation", action=audit.VIOLATION_LIFT,
                                 purpose=violation.lift_reason or "",
                                 citizen_id=violation.citizen_id,
                                 detail={"violation_id": violation.id}, urgent=True)
    return JSON({**queued, "violation_id": violation.id,
                 "violation": violation_public(violation)}, status_code=202)


async def violations_list(request: Request) -> Response:
    await require_official(request, Permission.READ)
    citizen_id = int_query(request, "citizen_id")
    active_raw = request.query_params.get("active")
    active = None if active_raw in (None, "") else active_raw.lower() in ("1", "true", "yes")
    items = await in_session(request, list_violations, citizen_id=citizen_id, active=active)
    return JSON({"items": [violation_public(v) for v in items]})


def batch_visible(principal: Principal, batch: Batch) -> bool:
    """District officials see their district's batches; the city level sees all."""
    return principal.district is None or batch.district == principal.district


async def job_get(request: Request) -> Response:
    """A job's state and result — from RQ while it keeps the job, then from its batch."""
    principal = await require_official(request, Permission.READ)
    job_id = request.path_params["job_id"]

    def from_batch(session):
        return session.exec(select(Batch).where(Batch.job_id == job_id)).first()

    batch = await in_session(request, from_batch) if len(job_id) <= 64 else None
    if batch is not None and not batch_visible(principal, batch):
        raise Forbidden("该任务不属本辖区 / this job is not your district's")
    if batch is None and principal.district is not None:
        raise NotFound("任务不存在 / job not found")
    state = await run_in_threadpool(job_state, request.app.state.redis, job_id)
    if state is not None:
        return JSON(state)
    if batch is None or batch.result is None:
        raise NotFound("任务不存在 / job not found")
    return JSON({"id": job_id, "state": "finished", "result": batch.result,
                 "batch_id": batch.id, "ended_at": iso(batch.finished_at)
                 if batch.finished_at else None})


async def job_undo(request: Request) -> Response:
    """POST /api/admin/jobs/{job_id}/undo: a job that reverts that batch (status changes or an
    exposure) for the people nobody has changed since. 202 {job_id, batch_id}; 404 unknown
    job; 409 not undoable, not finished, or already undone."""
    principal = await require_official(request, Permission.ACT)
    job_id = request.path_params["job_id"]

    def load(session):
        found = session.exec(select(Batch).where(Batch.job_id == job_id)).first()
        if found is not None and not batch_visible(principal, found):
            raise Forbidden("该任务不属本辖区 / this job is not your district's")
        return undoable_batch(session, job_id=job_id)

    batch = await in_session(request, load)
    queued = await enqueue_batch(request, principal, "undo", {"batch_id": batch.id},
                                 "workers.status.undo_batch", action=audit.UNDO,
                                 district=batch.district,
                                 detail={"undone_batch_id": batch.id, "kind": batch.kind})
    return JSON({**queued, "undone_batch_id": batch.id}, status_code=202)


async def batch_get(request: Request) -> Response:
    principal = await require_official(request, Permission.READ)

    def load(session):
        return session.get(Batch, request.path_params["id"])

    batch = await in_session(request, load)
    if batch is None:
        raise NotFound("批次不存在 / batch not found")
    if not batch_visible(principal, batch):
        raise Forbidden("该批次不属本辖区 / this batch is not your district's")
    return JSON({"id": batch.id, "kind": batch.kind, "actor": batch.actor,
                 "district": batch.district, "job_id": batch.job_id,
                 "created_at": iso(batch.created_at),
                 "finished_at": iso(batch.finished_at) if batch.finished_at else None,
                 "result": batch.result})


async def trace_get(request: Request) -> Response:
    """GET /api/admin/trace?id_number=…&purpose=…&since=…: unmasked, and audited."""
    principal = await require_official(request, Permission.TRACE)
    params = request.query_params
    purpose = clean_purpose(params.get("purpose") or params.get("reason"))
    since = parse_iso(params["since"], "since") if params.get("since") else None
    result = await in_session(request, trace, id_number=params.get("id_number"),
                              actor=principal.audit_actor, purpose=purpose,
                              detail=client_detail(request), since=since)
    return JSON(result, headers={"Cache-Control": "no-store"})  # unmasked: never cached


def audit_filters(request: Request) -> dict:
    """The audit's filters from the query: actor_id, actor (a "kind:id" tag), action,
    citizen_id, since/until (ISO times, or dates: a whole day in Beijing)."""
    params = request.query_params
    action = params.get("action") or None
    if action is not None and len(action) > 32:
        raise ValidationFailed("action 过长 / action is too long")
    return {"citizen_id": int_query(request, "citizen_id"),
            "actor_id": int_query(request, "actor_id"),
            "actor": (params.get("actor") or None), "action": action,
            "since": _when(params.get("since"), "since"),
            "until": _when(params.get("until"), "until", end_of_day=True)}


def _when(value: str | None, name: str, *, end_of_day: bool = False):
    if not value:
        return None
    if len(value) == 10:  # a date: Beijing's day
        from datetime import timedelta

        day = parse_iso(value + "T00:00:00+08:00", name)
        return day + timedelta(days=1) if end_of_day else day
    return parse_iso(value, name)


async def audit_list(request: Request) -> Response:
    await require_official(request, Permission.READ)
    limit = int_query(request, "limit", default=100, low=1, high=1000)
    items = await in_session(request, list_audit, **audit_filters(request),
                             before=int_query(request, "before"), limit=limit)
    return JSON({"items": items, "next_before": items[-1]["id"] if items else None})


async def audit_export(request: Request) -> Response:
    """GET /api/admin/audit/export.csv: the audit (masked) for an inspector; the export is
    itself audited."""
    import csv
    import io

    from web.exports import neutralise

    principal = await require_official(request, Permission.READ)
    filters = audit_filters(request)

    def load(session):
        rows = audit.export_rows(session, **filters)
        record(session, actor=principal.audit_actor, action=audit.AUDIT_EXPORT,
               target="audit.csv", detail={"rows": len(rows) - 1, **client_detail(request),
                                           "filters": {k: (iso(v) if hasattr(v, "tzinfo")
                                                           else v)
                                                       for k, v in filters.items() if v}})
        session.commit()
        return rows

    rows = await in_session(request, load)
    out = io.StringIO()
    # Officials' free text (purposes, names) as safe cells: no control characters, no formulas.
    csv.writer(out).writerows([neutralise(v) for v in row] for row in rows)
    stamp = utcnow().strftime("%Y%m%d")
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="scanbook-audit-{stamp}.csv"',
                             "Cache-Control": "no-store"})


async def notices_create(request: Request) -> Response:
    """An announcement, pushed to every citizen's /ws/me, and by Web Push to every browser
    that subscribed (a job: workers/push.py)."""
    principal = await require_official(request, Permission.ACT)
    text = clean_text((await read_json(request)).get("text"))
    detail = client_detail(request)

    def write(conn):
        event = insert_announcement(conn, text=text, now=utcnow())
        audit.record_on(conn, actor=principal.audit_actor, action=audit.NOTICE,
                        target=f"notice:{event['id']}", purpose=text[:500], detail=detail)
        return event, [(ALL_CITIZENS, event)]

    event = await write_then_publish(request, write)
    await run_in_threadpool(queue_announcement, request.app.state.redis, event["id"])
    return JSON(event, status_code=201)


async def notices_list(request: Request) -> Response:
    await require_official(request, Permission.READ)
    limit = int_query(request, "limit", default=50, low=1, high=500)
    before = int_query(request, "before")

    def load(session):
        return announcements(session.connection(), before=before, limit=limit)

    return JSON({"items": await in_session(request, load)})


# --- citizens' messages (留言) -------------------------------------------------------------

def handled_query(request: Request) -> bool | None:
    """?handled=true|false filters the messages; absent lists them all."""
    raw = request.query_params.get("handled")
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise ValidationFailed("handled 须为 true 或 false / handled must be true or false")
    return raw == "true"


async def messages_list(request: Request) -> Response:
    """GET /api/admin/messages?before=&limit=&handled=: what citizens wrote to the
    authority, each with its conversation and whether it is handled."""
    await require_official(request, Permission.READ)
    limit = int_query(request, "limit", default=50, low=1, high=500)
    items = await in_session(request, list_messages, before=int_query(request, "before"),
                             limit=limit, handled=handled_query(request))
    return JSON({"items": items, "next_before": items[-1]["id"] if items else None})


async def messages_reply(request: Request) -> Response:
    """POST /api/admin/messages/{id}/replies {text, handled?=true}: an official's answer,
    which the citizen reads in their 留言栏 (audited)."""
    principal = await require_official(request, Permission.ACT)
    body = await read_json(request)
    message = await in_session(request, reply_message, message_id=request.path_params["id"],
                               actor=principal.audit_actor, text=body.get("text"),
                               handled=body.get("handled", True),
                               detail=client_detail(request))
    return JSON(message, status_code=201)


async def messages_handled(request: Request) -> Response:
    """POST /api/admin/messages/{id}/handled {handled}: mark handled, or open it again."""
    principal = await require_official(request, Permission.ACT)
    body = await read_json(request)
    message = await in_session(request, set_handled, message_id=request.path_params["id"],
                               actor=principal.audit_actor, handled=body.get("handled"),
                               detail=client_detail(request))
    return JSON(message)


routes = [
    Route("/api/admin/citizens", citizens_create, methods=["POST"]),
    Route("/api/admin/status-changes", status_changes, methods=["POST"]),
    Route("/api/admin/status-changes/preview", status_changes_preview, methods=["POST"]),
    Route("/api/admin/exposures", exposures, methods=["POST"]),
    Route("/api/admin/exposures/preview", exposures_preview, methods=["POST"]),
    Route("/api/admin/violations", violations_create, methods=["POST"]),
    Route("/api/admin/violations", violations_list, methods=["GET"]),
    Route("/api/admin/violations/{id:int}/lift", violations_lift, methods=["POST"]),
    Route("/api/admin/violations/{id:int}", violations_lift, methods=["DELETE"]),
    Route("/api/admin/jobs/{job_id:str}", job_get, methods=["GET"]),
    Route("/api/admin/jobs/{job_id:str}/undo", job_undo, methods=["POST"]),
    Route("/api/admin/batches/{id:int}", batch_get, methods=["GET"]),
    Route("/api/admin/trace", trace_get, methods=["GET"]),
    Route("/api/admin/audit", audit_list, methods=["GET"]),
    Route("/api/admin/audit/export.csv", audit_export, methods=["GET"]),
    Route("/api/admin/notices", notices_create, methods=["POST"]),
    Route("/api/admin/notices", notices_list, methods=["GET"]),
    Route("/api/admin/messages", messages_list, methods=["GET"]),
    Route("/api/admin/messages/{id:int}/replies", messages_reply, methods=["POST"]),
    Route("/api/admin/messages/{id:int}/handled", messages_handled, methods=["POST"]),
]
