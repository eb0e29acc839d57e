"""Undoing a batch (a status-change batch or an exposure): the people it changed go back to
what they had — only those nobody has changed since. The undo is a batch of its own (kind
`undo`), carried out by a job like the others, with history rows and /ws/me notices.

What an undo does not bring back: logbooks the batch revoked (a registrar who was no longer
green) stay revoked, and co-registrar duties it ended stay ended — printed codes may have
been taken down and staff told, so a revoked logbook never comes back (docs/status-engine.md);
the registrar, green again, applies for a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session, col

from models.errors import Conflict, NotFound
from models.health import NOT_FOUND, Change, ChangeOutcome, masked_ids, person
from models.masking import mask_name
from models.status import Decision, Status
from models.tables import Batch, Citizen, StatusChange

UNDOABLE = ("status_changes", "exposure")
CHANGED_SINCE = "changed_since"  # a person's note in the undo's result: left as they are

_c = Citizen.__table__
_sc = StatusChange.__table__


def undo_reason(batch_id: int) -> str:
    return f"撤销批次 #{batch_id} / batch #{batch_id} undone"


def undoable_batch(session: Session, *, job_id: str) -> Batch:
    """The finished status-change or exposure batch a job carried out, not undone yet."""
    batch = session.scalars(select(Batch).where(col(Batch.job_id) == job_id)).first()
    if batch is None:
        raise NotFound("任务不存在 / job not found")
    if batch.kind not in UNDOABLE:
        raise Conflict("只能撤销批量状态变更或场所密接追踪 / only status-change batches and "
                       "exposures can be undone")
    if batch.finished_at is None:
        raise Conflict("该批次尚未完成，完成后才能撤销 / the batch has not finished yet")
    # Undos are rare: reading their (encrypted) payloads is cheaper than another column.
    for undo in session.scalars(select(Batch).where(col(Batch.kind) == "undo")):
        if undo.payload.get("batch_id") == batch.id:
            raise Conflict(f"该批次已撤销（批次 #{undo.id}） / already undone by batch "
                           f"#{undo.id}", detail={"job_id": undo.job_id, "batch_id": undo.id})
    return batch


@dataclass(frozen=True)
class Done:
    """One status change the batch made (a StatusChange row)."""

    id: int
    citizen_id: int
    old_status: str
    new_status: str
    popup_kind: str | None


def batch_changes(conn: Connection, batch_id: int) -> list[Done]:
    rows = conn.execute(select(_sc.c.id, _sc.c.citizen_id, _sc.c.old_status, _sc.c.new_status,
                               _sc.c.popup_kind).where(_sc.c.batch_id == batch_id)
                        .order_by(_sc.c.id))
    return [Done(*row) for row in rows]


def undo_changes(conn: Connection, *, undo_batch_id: int, undone_batch_id: int,
                 rows: list[Done], outcome: ChangeOutcome) -> list[Change]:
    """The changes that revert `rows` (call under the notice lock, in the transaction that
    applies them). A person is reverted when their state is still what the batch set and no
    later status change exists for them (this undo's own, from an interrupted run, aside);
    the others are listed in `outcome.people` as kept, note `changed_since`."""
    if not rows:
        return []
    ids = [r.citizen_id for r in rows]
    current = {row.id: row for row in conn.execute(
        select(_c.c.id, _c.c.name, _c.c.status, _c.c.popup_kind).where(_c.c.id.in_(ids)))}
    latest = dict(conn.execute(
        select(_sc.c.citizen_id, func.max(_sc.c.id)).where(
            _sc.c.citizen_id.in_(ids), _sc.c.batch_id != undo_batch_id)
        .group_by(_sc.c.citizen_id)).all())
    mine = set(conn.execute(select(_sc.c.citizen_id).where(
        _sc.c.batch_id == undo_batch_id, _sc.c.citizen_id.in_(ids))).scalars())
    before = _states_before(conn, rows)
    changes: list[Change] = []
    left: list[Done] = []
    for r in rows:
        now = current.get(r.citizen_id)
        untouched = (now is not None and latest.get(r.citizen_id) == r.id
                     and (now.status, now.popup_kind) == (r.new_status, r.popup_kind))
        if r.citizen_id in mine or untouched:
            popup, reason = before.get(r.id, (None, ""))
            if r.old_status == Status.GREEN or not reason:
                reason = undo_reason(undone_batch_id)
            changes.append(Change(r.citizen_id, r.old_status, popup, reason))
        else:
            left.append(r)
    masked = masked_ids(conn, [r.citizen_id for r in left if r.citizen_id in current])
    for r in left:
        now = current.get(r.citizen_id)
        if now is None:
            outcome.people.append(person(NOT_FOUND, row=None, citizen_id=r.citizen_id,
                                         name=None, id_masked=None))
            continue
        outcome.people.append(person(Decision.KEPT, row=None, citizen_id=r.citizen_id,
                                     name=mask_name(now.name), id_masked=masked.get(r.citizen_id),
                                     before=now.status, after=now.status, note=CHANGED_SINCE))
    return changes


def _states_before(conn: Connection, rows: list[Done]) -> dict[int, tuple[str | None, str]]:
    """For each change: the popup kind and reason the person had before it, from their
    previous status change (none: they were as registered, green without a reason)."""
    prev = _sc.alias("prev")
    newest_before = (select(func.max(prev.c.id)).where(
        prev.c.citizen_id == _sc.c.citizen_id, prev.c.id < _sc.c.id).scalar_subquery())
    earlier = _sc.alias("earlier")
    query = (select(_sc.c.id, earlier.c.popup_kind, earlier.c.reason)
             .select_from(_sc.join(earlier, and_(earlier.c.id == newest_before)))
             .where(_sc.c.id.in_([r.id for r in rows])))
    return {row.id: (row.popup_kind, row.reason) for row in conn.execute(query)}
