"""Status changes (from officials' batches) and their consequences: notices to the citizen,
revocation of a registrar's logbooks when they are no longer green."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from models.errors import DomainError
from models.idnumber import parse_id_number
from models.status import Status, parse_status
from models.tables import Citizen, Logbook, Notice, Registrar, StatusChange, utcnow
from models.timeutil import iso
from models.venues import set_logbook_state

REVOKED_REASON = "登记员健康状态异常 / the registrar's health status is no longer green"


@dataclass
class ChangeOutcome:
    applied: int = 0
    unchanged: int = 0
    skipped: int = 0  # already applied by an earlier run of the same batch
    revoked_logbooks: int = 0
    errors: list[dict] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)  # (citizen channel events)
    logbook_events: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"applied": self.applied, "unchanged": self.unchanged, "skipped": self.skipped,
                "revoked_logbooks": self.revoked_logbooks, "errors": self.errors}


def status_event(notice: Notice) -> dict:
    return {"type": "status", "id": notice.id, "citizen_id": notice.citizen_id,
            "status": notice.status, "popup_kind": notice.popup_kind, "reason": notice.reason,
            "at": iso(notice.at)}


def notice_event(notice: Notice) -> dict:
    if notice.kind == "status":
        return status_event(notice)
    return {"type": "notice", "id": notice.id, "text": notice.text, "at": iso(notice.at)}


def validate_row(row: object) -> tuple[str, Status, str | None, str]:
    if not isinstance(row, dict):
        raise DomainError("每行须为对象 / each change must be an object")
    id_number = parse_id_number(row.get("id_number")).value
    status, popup = parse_status(row.get("status"), row.get("popup_kind"))
    reason = row.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > 500:
        raise DomainError("reason 须为500字以内的字符串 / reason must be a string ≤ 500")
    return id_number, status, popup, reason


def revoke_registrars(session: Session, citizen_ids: list[int], outcome: ChangeOutcome) -> None:
    """Registrars who are not green: every logbook they own is revoked; co-duty ends.
    A revoked logbook never comes back: a registrar green again applies for a new one."""
    if not citizen_ids:
        return
    books = session.exec(
        select(Logbook).where(col(Logbook.created_by).in_(citizen_ids),
                              col(Logbook.state).in_(("active", "suspended")))
    ).all()
    for book in books:
        outcome.logbook_events.append(set_logbook_state(session, book, "revoked",
                                                        REVOKED_REASON))
        outcome.revoked_logbooks += 1
    duties = session.exec(
        select(Registrar).where(col(Registrar.citizen_id).in_(citizen_ids),
                                Registrar.role == "co", col(Registrar.active).is_(True))
    ).all()
    for duty in duties:
        duty.active = False
        session.add(duty)


def apply_changes(session: Session, *, batch_id: int, rows: list[tuple[int, object]],
                  outcome: ChangeOutcome) -> None:
    """Apply (row number, row) pairs of one batch in the caller's transaction.

    Idempotent: a citizen already changed by this batch (an earlier, interrupted run) is
    skipped, so a re-run sends no notice twice.
    """
    parsed: list[tuple[int, str, Status, str | None, str]] = []
    for number, row in rows:
        try:
            parsed.append((number, *validate_row(row)))
        except DomainError as exc:
            raw = row.get("id_number") if isinstance(row, dict) else None
            outcome.errors.append({"row": number, "id_number": raw if isinstance(raw, str)
                                   else None, "error": exc.code, "message": exc.message})
    if not parsed:
        return
    numbers = sorted({p[1] for p in parsed})
    citizens = {c.id_number: c for c in session.exec(
        select(Citizen).where(col(Citizen.id_number).in_(numbers))).all()}
    done = set(session.exec(select(StatusChange.citizen_id).where(
        StatusChange.batch_id == batch_id,
        col(StatusChange.citizen_id).in_([c.id for c in citizens.values()]))).all())
    now = utcnow()
    new_notices: list[Notice] = []
    not_green: list[int] = []
    for number, id_number, status, popup, reason in parsed:
        citizen = citizens.get(id_number)
        if citizen is None:
            outcome.errors.append({"row": number, "id_number": id_number, "error": "not_found",
                                   "message": "查无此人 / no citizen with this ID number"})
            continue
        if citizen.id in done:
            outcome.skipped += 1
            continue
        done.add(citizen.id)
        if citizen.status == status and citizen.popup_kind == popup:
            outcome.unchanged += 1
            continue
        session.add(StatusChange(batch_id=batch_id, citizen_id=citizen.id,
                                 old_status=citizen.status, new_status=status,
                                 popup_kind=popup, reason=reason, at=now))
        citizen.status, citizen.popup_kind, citizen.reason, citizen.status_at = (
            status, popup, reason, now)
        session.add(citizen)
        notice = Notice(citizen_id=citizen.id, kind="status", status=status,
                        popup_kind=popup, reason=reason, at=now)
        session.add(notice)
        new_notices.append(notice)
        outcome.applied += 1
        if status != Status.GREEN:
            not_green.append(citizen.id)
    revoke_registrars(session, not_green, outcome)
    session.flush()
    outcome.notices.extend(status_event(n) for n in new_notices)
