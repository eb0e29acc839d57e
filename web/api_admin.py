"""Health-authority endpoints (official token): citizens, status changes, exposures,
violations and their lifting, jobs, the audited trace, the audit log, announcements, and
citizens' messages."""

from __future__ import annotations

from urllib.parse import unquote

from sqlmodel import select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.audit import clean_purpose, list_audit, trace
from models.citizens import create_citizen, is_minor
from models.errors import NotFound, ValidationFailed
from models.health import exposure_payload
from models.masking import mask_id_number, mask_name
from models.messages import list_messages, set_handled
from models.messages import reply as reply_message
from models.notices import announcements, clean_text, insert_announcement
from models.preview import preview_exposure, preview_status_changes
from models.tables import Batch, Venue, utcnow
from models.timeutil import iso, parse_iso
from models.undo import undoable_batch
from models.violations import (
    create_violation,
    lift_violation,
    list_violations,
    violation_public,
)
from realtime.events import ALL_CITIZENS
from web.auth import Principal, require
from web.common import in_session, write_then_publish
from web.responses import JSON, int_query, read_json
from workers.queues import enqueue, job_state

MAX_CHANGES = 100_000
# Batches this small (a few people, typically registrars) jump the queue: a registrar's
# revocation must not wait behind a 100,000-row exposure that was queued first.
URGENT_ROWS = 1000


def who(request: Request, principal: Principal) -> tuple[str, dict]:
    """The audit's "who": the official's name and office when the client gives them
    (X-Official, X-Office headers, percent-encoded UTF-8 since headers are ASCII: the shared
    token alone says only "an official")."""
    official = unquote(request.headers.get("x-official", "")).strip()[:40]
    office = unquote(request.headers.get("x-office", "")).strip()[:100]
    actor = f"{principal.actor}:{official}" if official else principal.actor
    client = request.client.host if request.client else None
    return actor, {"office": office or None, "official": official or None, "ip": client,
                   "user_agent": request.headers.get("user-agent", "")[:200]}



async def citizens_create(request: Request) -> Response:
    await require(request, "official")
    body = await read_json(request)
    citizen, token = await in_session(request, create_citizen, name=body.get("name"),
                                      id_number=body.get("id_number"), phone=body.get("phone"))
    return JSON({"id": citizen.id, "token": token, "name_masked": mask_name(citizen.name),
                 "id_masked": mask_id_number(citizen.id_number), "minor": is_minor(citizen),
                 "status": citizen.status}, status_code=201)


async def enqueue_batch(request: Request, principal: Principal, kind: str, payload: dict,
                        job: str, *, urgent: bool = False) -> dict:
    """Store the request as a batch, then enqueue the job that carries it out by id."""
    actor, _detail = who(request, principal)

    def save(session):
        batch = Batch(kind=kind, actor=actor, payload=payload)
        session.add(batch)
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


async def submit_batch(request: Request, kind: str, payload: dict, job: str, *,
                       urgent: bool = False) -> Response:
    principal = await require(request, "official")
    return JSON(await enqueue_batch(request, principal, kind, payload, job, urgent=urgent),
                status_code=202)


async def _changes(request: Request) -> list:
    """The body of a status-change batch (or its preview): 1–MAX_CHANGES rows."""
    await require(request, "official")
    changes = (await read_json(request)).get("changes")
    if not isinstance(changes, list) or not changes:
        raise ValidationFailed("changes 须为非空数组 / changes must be a non-empty array")
    if len(changes) > MAX_CHANGES:
        raise ValidationFailed(f"每批最多 {MAX_CHANGES} 行 / at most {MAX_CHANGES} rows a batch")
    return changes


async def status_changes(request: Request) -> Response:
    changes = await _changes(request)
    return await submit_batch(request, "status_changes", {"changes": changes},
                              "workers.status.apply_status_changes",
                              urgent=len(changes) <= URGENT_ROWS)


async def status_changes_preview(request: Request) -> Response:
    """POST /api/admin/status-changes/preview: what the batch would do now; writes nothing.
    200 {total, changed, kept, not_found, invalid}."""
    changes = await _changes(request)
    return JSON(await in_session(request, lambda session: preview_status_changes(
        session.connection(), changes)))


async def _exposure(request: Request) -> dict:
    """The body of an exposure (or its preview), its venue checked."""
    await require(request, "official")
    payload = exposure_payload(await read_json(request))

    def venue_exists(session) -> None:
        if session.get(Venue, payload["venue_id"]) is None:
            raise NotFound("场所不存在 / venue not found")

    await in_session(request, venue_exists)
    return payload


async def exposures(request: Request) -> Response:
    payload = await _exposure(request)
    return await submit_batch(request, "exposure", payload, "workers.status.apply_exposure")


async def exposures_preview(request: Request) -> Response:
    """POST /api/admin/exposures/preview: whom the exposure would change or keep now; writes
    nothing. 200 {total, changed, kept, not_found, unregistered}."""
    payload = await _exposure(request)
    return JSON(await in_session(request, lambda session: preview_exposure(
        session.connection(), payload)))


async def violations_create(request: Request) -> Response:
    principal = await require(request, "official")
    body = await read_json(request)
    actor, _detail = who(request, principal)
    violation = await in_session(request, create_violation, citizen_id=body.get("citizen_id"),
                                 reason=body.get("reason"), actor=actor)
    queued = await enqueue_batch(request, principal, "violation",
                                 {"violation_id": violation.id}, "workers.status.apply_violation",
                                 urgent=True)
    return JSON({**queued, "violation_id": violation.id,
                 "violation": violation_public(violation)}, status_code=202)


async def violations_lift(request: Request) -> Response:
    """POST /api/admin/violations/{id}/lift (or DELETE /api/admin/violations/{id})."""
    principal = await require(request, "official")
    body = await read_json(request) if await request.body() else {}
    actor, _detail = who(request, principal)
    violation = await in_session(request, lift_violation,
                                 violation_id=request.path_params["id"], actor=actor,
                                 reason=body.get("reason"))
    queued = await enqueue_batch(request, principal, "lift", {"violation_id": violation.id},
                                 "workers.status.lift_violation", urgent=True)
    return JSON({**queued, "violation_id": violation.id,
                 "violation": violation_public(violation)}, status_code=202)


async def violations_list(request: Request) -> Response:
    await require(request, "official")
    citizen_id = int_query(request, "citizen_id")
    active_raw = request.query_params.get("active")
    active = None if active_raw in (None, "") else active_raw.lower() in ("1", "true", "yes")
    items = await in_session(request, list_violations, citizen_id=citizen_id, active=active)
    return JSON({"items": [violation_public(v) for v in items]})


async def job_get(request: Request) -> Response:
    """A job's state and result — from RQ while it keeps the job, then from its batch."""
    await require(request, "official")
    job_id = request.path_params["job_id"]
    state = await run_in_threadpool(job_state, request.app.state.redis, job_id)
    if state is not None:
        return JSON(state)

    def from_batch(session):

        return session.exec(select(Batch).where(Batch.job_id == job_id)).first()

    batch = await in_session(request, from_batch)
    if batch is None or batch.result is None:
        raise NotFound("任务不存在 / job not found")
    return JSON({"id": job_id, "state": "finished", "result": batch.result,
                 "batch_id": batch.id, "ended_at": iso(batch.finished_at)
                 if batch.finished_at else None})


async def job_undo(request: Request) -> Response:
    """POST /api/admin/jobs/{job_id}/undo: a job that reverts that batch (status changes or an
    exposure) for the people nobody has changed since. 202 {job_id, batch_id}; 404 unknown
    job; 409 not undoable, not finished, or already undone."""
    principal = await require(request, "official")
    job_id = request.path_params["job_id"]
    batch = await in_session(request, undoable_batch, job_id=job_id)
    queued = await enqueue_batch(request, principal, "undo", {"batch_id": batch.id},
                                 "workers.status.undo_batch")
    return JSON({**queued, "undone_batch_id": batch.id}, status_code=202)


async def batch_get(request: Request) -> Response:
    await require(request, "official")

    def load(session):
        return session.get(Batch, request.path_params["id"])

    batch = await in_session(request, load)
    if batch is None:
        raise NotFound("批次不存在 / batch not found")
    return JSON({"id": batch.id, "kind": batch.kind, "actor": batch.actor,
                 "job_id": batch.job_id, "created_at": iso(batch.created_at),
                 "finished_at": iso(batch.finished_at) if batch.finished_at else None,
                 "result": batch.result})


async def trace_get(request: Request) -> Response:
    """GET /api/admin/trace?id_number=…&purpose=…&since=…: unmasked, and audited."""
    principal = await require(request, "official")
    params = request.query_params
    purpose = clean_purpose(params.get("purpose") or params.get("reason"))
    since = parse_iso(params["since"], "since") if params.get("since") else None
    actor, detail = who(request, principal)
    result = await in_session(request, trace, id_number=params.get("id_number"), actor=actor,
                              purpose=purpose, detail=detail, since=since)
    return JSON(result, headers={"Cache-Control": "no-store"})  # unmasked: never cached


async def audit_list(request: Request) -> Response:
    await require(request, "official")
    params = request.query_params
    limit = int_query(request, "limit", default=100, low=1, high=1000)
    items = await in_session(request, list_audit, citizen_id=int_query(request, "citizen_id"),
                             action=params.get("action") or None,
                             actor=params.get("actor") or None,
                             before=int_query(request, "before"), limit=limit)
    return JSON({"items": items, "next_before": items[-1]["id"] if items else None})


async def notices_create(request: Request) -> Response:
    """An announcement, pushed to every citizen's /ws/me."""
    await require(request, "official")
    text = clean_text((await read_json(request)).get("text"))

    def write(conn):
        event = insert_announcement(conn, text=text, now=utcnow())
        return event, [(ALL_CITIZENS, event)]

    return JSON(await write_then_publish(request, write), status_code=201)


async def notices_list(request: Request) -> Response:
    await require(request, "official")
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
    await require(request, "official")
    limit = int_query(request, "limit", default=50, low=1, high=500)
    items = await in_session(request, list_messages, before=int_query(request, "before"),
                             limit=limit, handled=handled_query(request))
    return JSON({"items": items, "next_before": items[-1]["id"] if items else None})


async def messages_reply(request: Request) -> Response:
    """POST /api/admin/messages/{id}/replies {text, handled?=true}: an official's answer,
    which the citizen reads in their 留言栏 (audited)."""
    principal = await require(request, "official")
    body = await read_json(request)
    actor, detail = who(request, principal)
    message = await in_session(request, reply_message, message_id=request.path_params["id"],
                               actor=actor, text=body.get("text"),
                               handled=body.get("handled", True), detail=detail)
    return JSON(message, status_code=201)


async def messages_handled(request: Request) -> Response:
    """POST /api/admin/messages/{id}/handled {handled}: mark handled, or open it again."""
    principal = await require(request, "official")
    body = await read_json(request)
    actor, detail = who(request, principal)
    message = await in_session(request, set_handled, message_id=request.path_params["id"],
                               actor=actor, handled=body.get("handled"), detail=detail)
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
    Route("/api/admin/notices", notices_create, methods=["POST"]),
    Route("/api/admin/notices", notices_list, methods=["GET"]),
    Route("/api/admin/messages", messages_list, methods=["GET"]),
    Route("/api/admin/messages/{id:int}/replies", messages_reply, methods=["POST"]),
    Route("/api/admin/messages/{id:int}/handled", messages_handled, methods=["POST"]),
]
