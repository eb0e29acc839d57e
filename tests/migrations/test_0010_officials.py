"""Migration 0010 on an audit written under the shared token: the rows are not rewritten
(the audit refuses UPDATE), they get no actor id, and they read as what they were — the
shared token, with any name the client typed marked unverified; new rows name their
official. Downgrade and upgrade again keep every row."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import Session, select

from models.audit import Actor, audit_public, record
from models.db import make_engine
from models.migrate import alembic_config
from models.tables import Audit, UTCDateTime, utcnow

_audit = sa.table("audit", sa.column("id", sa.Integer()), sa.column("actor", sa.String()),
                  sa.column("action", sa.String()), sa.column("target", sa.String()),
                  sa.column("citizen_id", sa.Integer()), sa.column("purpose", sa.String()),
                  sa.column("detail", sa.JSON()), sa.column("at", UTCDateTime()))




def test_old_audit_rows_keep_their_meaning(url):
    config = alembic_config(url)
    command.upgrade(config, "0009")
    eng = make_engine(url)
    try:
        with eng.begin() as conn:  # as the code before named accounts wrote them
            conn.execute(sa.insert(_audit), [
                {"actor": "official", "action": "trace", "target": "11**************21",
                 "citizen_id": 1, "purpose": "流调", "detail": {"found": True},
                 "at": utcnow()},
                {"actor": "official:张珊", "action": "trace", "target": "11**************21",
                 "citizen_id": 1, "purpose": "密接",
                 "detail": {"official": "张珊", "office": "朝阳区疾控中心"}, "at": utcnow()},
                {"actor": "citizen:7", "action": "proxy_check", "target": "11**",
                 "citizen_id": None, "purpose": "他人代查", "detail": None, "at": utcnow()},
            ])
        command.upgrade(config, "0010")
        with Session(eng) as session:
            record(session, actor=Actor("official", 3, "王医生", "东城区"), action="trace",
                   target="11**", purpose="新")
            session.commit()
            rows = [audit_public(a) for a in session.exec(select(Audit).order_by(Audit.id))]
        shared, claimed, citizen, new = (r["actor"] for r in rows)
        assert shared["id"] is None and shared["legacy"] is True
        assert shared["name"].startswith("共享令牌")
        assert claimed["id"] is None and "张珊" in claimed["name"] and "未验证" in claimed["name"]
        assert citizen == {"kind": "citizen", "id": 7, "name": None}
        assert new == {"kind": "official", "id": 3, "name": "王医生"}
        assert rows[1]["detail"]["office"] == "朝阳区疾控中心"  # what was written stays
        assert [r["purpose"] for r in rows] == ["流调", "密接", "他人代查", "新"]
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), eng.begin() as conn:
            conn.execute(sa.text("UPDATE audit SET actor_name = 'x'"))  # still append-only

        command.downgrade(config, "0009")
        with eng.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(_audit)).scalar() == 4
        command.upgrade(config, "head")
        with eng.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(_audit)).scalar() == 4
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), eng.begin() as conn:
            conn.execute(sa.text("UPDATE audit SET purpose = 'x'"))  # the round trip kept it
    finally:
        eng.dispose()
