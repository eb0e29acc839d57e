"""What a status-change batch or an exposure would do, before it runs: how many people it
would change, keep (an equal or stricter status) and not find. Reads only; the same rule as
the job (models.status.decide), on the statuses of this moment — the job decides again when
it runs, so a status changed in between is counted as it then is."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from models.health import (
    Change,
    ChangeOutcome,
    current_states,
    exposed_citizens,
    exposure_changes,
    parse_rows,
    resolve_rows,
)
from models.status import Decision, decide
from models.visitors import exposed_visitors


def count(conn: Connection, changes: list[Change], *, raise_only: bool) -> dict[str, int]:
    """{changed, kept, not_found} for these changes (a person named twice counts once)."""
    states = current_states(conn, sorted({c.citizen_id for c in changes}))
    tally = {"changed": 0, "kept": 0, "not_found": 0}
    seen: set[int] = set()
    for change in changes:
        if change.citizen_id in seen:
            continue
        seen.add(change.citizen_id)
        old = states.get(change.citizen_id)
        if old is None:
            tally["not_found"] += 1
            continue
        verdict = decide(old, (change.status, change.popup_kind), raise_only=raise_only)
        tally["changed" if verdict is Decision.CHANGED else "kept"] += 1
    return tally


def preview_status_changes(conn: Connection, rows: list) -> dict:
    """A status-change batch: per-person changes (they may lower); unknown ID numbers are
    not_found, invalid rows (and repeats) `invalid`."""
    parsed, errors = parse_rows(rows)
    outcome = ChangeOutcome()
    changes = resolve_rows(conn, parsed, outcome)
    tally = count(conn, changes, raise_only=False)
    tally["not_found"] += len(outcome.errors)
    return {"total": len(rows), **tally, "invalid": len(errors)}


def preview_exposure(conn: Connection, payload: dict) -> dict:
    """An exposure (validated by models.health.exposure_payload): it only raises.
    `unregistered`: visitors without a citizen record, who cannot be given a status."""
    exposed = exposed_citizens(conn, payload)
    unregistered = exposed_visitors(
        conn, venue_id=payload["venue_id"], start=datetime.fromisoformat(payload["from"]),
        until=datetime.fromisoformat(payload["until"]))
    tally = count(conn, exposure_changes(payload, exposed), raise_only=True)
    return {"total": len(exposed), **tally, "unregistered": unregistered}
