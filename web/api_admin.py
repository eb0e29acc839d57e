"""Health-authority endpoints (official token)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from models.citizens import create_citizen, is_minor
from models.errors import NotFound, ValidationFailed
from models.masking import mask_id_number, mask_name
from models.tables import Batch
from web.app import in_session
from web.auth import require
from web.responses import JSON, read_json
from workers.queues import enqueue, job_state

MAX_CHANGES = 100_000


async def citizens_create(request: Request) -> Response:
    await require(request, "official")
    body = await read_json(request)
    citizen, token = await in_session(request, create_citizen, name=body.get("name"),
                                      id_number=body.get("id_number"), phone=body.get("phone"))
    return JSON({"id": citizen.id, "token": token, "name_masked": mask_name(citizen.name),
                 "id_masked": mask_id_number(citizen.id_number), "minor": is_minor(citizen),
                 "status": citizen.status}, status_code=201)


async def submit_batch(request: Request, kind: str, payload: dict, job: str) -> Response:
    """Store the request as a batch, then enqueue the job that carries it out by id."""
    principal = await require(request, "official")

    def save(session):
        batch = Batch(kind=kind, actor=principal.actor, payload=payload)
        session.add(batch)
        session.commit()
        return batch

    batch = await in_session(request, save)
    queued = enqueue(request.app.state.redis, job, batch.id)

    def link(session):
        row = session.get(Batch, batch.id)
        row.job_id = queued.id
        session.add(row)
        session.commit()

    await in_session(request, link)
    return JSON({"job_id": queued.id, "batch_id": batch.id}, status_code=202)


async def status_changes(request: Request) -> Response:
    await require(request, "official")
    body = await read_json(request)
    changes = body.get("changes")
    if not isinstance(changes, list) or not changes:
        raise ValidationFailed("changes 须为非空数组 / changes must be a non-empty array")
    if len(changes) > MAX_CHANGES:
        raise ValidationFailed(f"每批最多 {MAX_CHANGES} 行 / at most {MAX_CHANGES} rows a batch")
    return await submit_batch(request, "status_changes", {"changes": changes},
                              "workers.status.apply_status_changes")


async def job_get(request: Request) -> Response:
    await require(request, "official")
    state = job_state(request.app.state.redis, request.path_params["job_id"])
    if state is None:
        raise NotFound("任务不存在 / job not found")
    return JSON(state)


routes = [
    Route("/api/admin/citizens", citizens_create, methods=["POST"]),
    Route("/api/admin/status-changes", status_changes, methods=["POST"]),
    Route("/api/admin/jobs/{job_id:str}", job_get, methods=["GET"]),
]
