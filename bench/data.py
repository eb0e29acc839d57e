"""Benchmark data, written straight into a migrated database: many distinct visitors (each a
bearer token), venues with logbooks, and registrars to watch each venue's feed."""

from __future__ import annotations

import base64
import os
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import insert, select, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import models.tables  # noqa: F401 - registers every table
from models.citizens import hash_token, new_token
from models.crypto import Keyring, new_key, use_keyring
from models.idnumber import make_id_number
from models.migrate import upgrade
from models.tables import Citizen, Logbook, Registrar, Venue, utcnow
from models.venues import new_code

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
COMPOUND = ("欧阳", "司马", "诸葛", "上官")


@dataclass
class BenchData:
    visitor_tokens: list[str] = field(default_factory=list)
    venue_ids: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)  # logbook codes, venue-major order
    logbook_venue: list[int] = field(default_factory=list)  # venue id of each code
    feed_tokens: dict[int, list[str]] = field(default_factory=dict)  # venue id → registrars


def reset_schema(engine: Engine) -> None:
    """An empty, migrated database (PostgreSQL: the public schema of *this* database only)."""
    if engine.dialect.name == "postgresql":
        if engine.url.database in (None, "", "test", "postgres"):
            raise SystemExit(f"refusing to wipe database {engine.url.database!r}; "
                             "use a database of the benchmark's own (e.g. sb_bench)")
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        SQLModel.metadata.drop_all(engine)
    upgrade(engine)


def share_data_key() -> None:
    """Seeded ID numbers are encrypted (models/crypto.py) and the servers a benchmark starts
    must read them: one key for this process and, through the environment they inherit,
    for them."""
    key = os.environ.setdefault("SCANBOOK_DATA_KEY", new_key())
    use_keyring(Keyring({1: base64.b64decode(key)}))


def _name(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(COMPOUND) + rng.choice(GIVEN) + rng.choice(GIVEN)
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


def _citizen_rows(n: int, start: int, rng: random.Random) -> tuple[list[dict], list[str]]:
    rows, tokens = [], []
    now = utcnow()
    for i in range(start, start + n):
        token = new_token()
        # 5 % abnormal (alerts on the feed), ~10 % minors, the rest green adults
        status = "green" if rng.random() < 0.95 else rng.choice(["yellow", "red", "popup"])
        born = (date(2012, 1, 1) if i % 10 == 0 else date(1950, 1, 1)) + timedelta(i // 1000)
        rows.append({
            "name": _name(rng), "id_number": make_id_number("110101", born, i),
            "phone": "", "status": status,
            "popup_kind": "travel" if status == "popup" else None, "reason": "",
            "status_at": now, "token_hash": hash_token(token), "created_at": now,
        })
        tokens.append(token)
    return rows, tokens


def seed(engine: Engine, *, citizens: int, venues: int, logbooks_per_venue: int,
         feeds_per_venue: int, seed: int = 7) -> BenchData:
    """Create the visitors, venues, logbooks and registrars; returns their tokens and codes."""
    share_data_key()
    rng = random.Random(seed)
    data = BenchData()
    registrars = venues * feeds_per_venue
    with engine.begin() as conn:
        rows, tokens = _citizen_rows(registrars, 0, rng)
        for row in rows:
            row["status"], row["popup_kind"] = "green", None  # registrars must be green
        conn.execute(insert(Citizen), rows)
        staff = [r.id for r in conn.execute(select(Citizen.id).order_by(Citizen.id))]
        staff_tokens = dict(zip(staff, tokens, strict=True))
        for chunk in range(0, citizens, 5000):
            rows, tokens = _citizen_rows(min(5000, citizens - chunk), registrars + chunk, rng)
            conn.execute(insert(Citizen), rows)
            data.visitor_tokens.extend(tokens)
        now = utcnow()
        for v in range(venues):
            team = staff[v * feeds_per_venue:(v + 1) * feeds_per_venue]
            venue_id = conn.execute(insert(Venue).returning(Venue.id), {
                "name": f"压测场所{v + 1}", "address": f"测试路{v + 1}号", "district": "朝阳区",
                "category": "office", "capacity": 500, "owner_id": team[0], "created_at": now,
            }).scalar_one()
            conn.execute(insert(Registrar), [
                {"venue_id": venue_id, "citizen_id": cid, "role": "owner" if i == 0 else "co",
                 "active": True, "created_at": now} for i, cid in enumerate(team)])
            for b in range(logbooks_per_venue):
                code = new_code()
                conn.execute(insert(Logbook), {
                    "venue_id": venue_id, "label": f"{b + 1}号门", "code": code,
                    "state": "active", "reason": None, "created_by": team[0],
                    "created_at": now, "state_at": now})
                data.codes.append(code)
                data.logbook_venue.append(venue_id)
            data.venue_ids.append(venue_id)
            data.feed_tokens[venue_id] = [staff_tokens[cid] for cid in team]
    return data
