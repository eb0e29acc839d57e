"""Data for the exposure benchmark, written straight into a migrated database: one venue whose
logbook saw `visitors` distinct citizens inside a window, each citizen with a bearer token,
and a registrar who owns `logbooks` logbooks (for the revocation measurement)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from bench.data import share_data_key
from models.citizens import hash_token, new_token
from models.idnumber import make_id_number
from models.masking import mask_id_number, mask_name
from models.tables import Checkin, Citizen, Logbook, Registrar, Venue, utcnow
from models.venues import new_code

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CHUNK = 5000


@dataclass
class ExposureData:
    venue_id: int = 0
    window: tuple[datetime, datetime] = (utcnow(), utcnow())
    visitor_ids: list[int] = field(default_factory=list)
    id_numbers: list[str] = field(default_factory=list)  # the visitors' ID numbers
    tokens: dict[int, str] = field(default_factory=dict)  # citizen id → bearer token
    registrar_id_number: str = ""
    registrar_token: str = ""
    logbook_codes: list[str] = field(default_factory=list)  # the registrar's logbooks
    scanner_tokens: list[str] = field(default_factory=list)  # visitors who probe them


def _citizen(i: int, rng: random.Random, now: datetime) -> tuple[dict, str]:
    token = new_token()
    born = date(1950, 1, 1) + timedelta(days=i // 50)
    name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
    return {"name": name, "id_number": make_id_number("110105", born, i % 1000),
            "phone": "", "status": "green", "popup_kind": None, "reason": "", "status_at": now,
            "token_hash": hash_token(token), "created_at": now}, token


def seed(engine: Engine, *, visitors: int, logbooks: int = 100, seed: int = 11
         ) -> ExposureData:
    """Citizens, the exposed venue with `visitors` check-ins in a one-hour window, and a
    registrar with `logbooks` logbooks at a second venue."""
    share_data_key()
    rng = random.Random(seed)
    data = ExposureData()
    now = utcnow()
    start = (now - timedelta(days=1)).replace(microsecond=0)
    end = start + timedelta(hours=1)
    data.window = (start, end)
    with engine.begin() as conn:
        owner_row, data.registrar_token = _citizen(0, rng, now)
        data.registrar_id_number = owner_row["id_number"]
        owner_id = conn.execute(insert(Citizen).returning(Citizen.id), owner_row).scalar_one()
        venue = {"address": "测试路1号", "district": "朝阳区", "category": "mall",
                 "capacity": 100_000, "owner_id": owner_id, "created_at": now}
        data.venue_id = conn.execute(insert(Venue).returning(Venue.id),
                                     {**venue, "name": "压测暴露场所"}).scalar_one()
        other = conn.execute(insert(Venue).returning(Venue.id),
                             {**venue, "name": "登记员的场所"}).scalar_one()
        conn.execute(insert(Registrar), [
            {"venue_id": v, "citizen_id": owner_id, "role": "owner", "active": True,
             "created_at": now} for v in (data.venue_id, other)])
        exposed_book = conn.execute(insert(Logbook).returning(Logbook.id), {
            "venue_id": data.venue_id, "label": "正门", "code": new_code(), "state": "active",
            "created_by": owner_id, "created_at": now, "state_at": now}).scalar_one()
        data.logbook_codes = [new_code() for _ in range(logbooks)]
        conn.execute(insert(Logbook), [
            {"venue_id": other, "label": f"{i + 1}号门", "code": code, "state": "active",
             "created_by": owner_id, "created_at": now, "state_at": now}
            for i, code in enumerate(data.logbook_codes)])
        for base in range(1, visitors + 1, CHUNK):
            rows, tokens = zip(*(_citizen(i, rng, now)
                                 for i in range(base, min(base + CHUNK, visitors + 1))),
                               strict=True)
            first = conn.execute(select(Citizen.id).order_by(Citizen.id.desc()).limit(1)
                                 ).scalar_one()
            conn.execute(insert(Citizen), list(rows))
            ids = list(conn.execute(select(Citizen.id).where(Citizen.id > first)
                                    .order_by(Citizen.id)).scalars())
            data.visitor_ids.extend(ids)
            data.id_numbers.extend(row["id_number"] for row in rows)
            data.tokens.update(zip(ids, tokens, strict=True))
            span = int((end - start).total_seconds())
            conn.execute(insert(Checkin), [
                {"venue_id": data.venue_id, "logbook_id": exposed_book, "citizen_id": cid,
                 "via": "scan", "status": "green", "alert": False, "minor": False,
                 "name_masked": mask_name(row["name"]), "id_masked": mask_id_number(
                     row["id_number"]), "at": start + timedelta(seconds=rng.randint(0, span))}
                for cid, row in zip(ids, rows, strict=True)])
    data.scanner_tokens = [data.tokens[cid] for cid in data.visitor_ids[-logbooks:]]
    return data
