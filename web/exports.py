"""Logbook exports (masked): CSV with a BOM so Excel shows Chinese, and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from urllib.parse import quote

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from models.checkins import checkins_after
from models.tables import Logbook

HEADERS = ["编号 id", "时间 time", "登记簿 logbook", "姓名 name", "身份证号 id_number",
           "状态 status", "弹窗类型 popup_kind", "异常 alert", "未成年 minor", "方式 via"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """A cell that a spreadsheet would run as a formula is prefixed with a quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _rows(engine: Engine, logbook_id: int) -> Iterator[list[str]]:
    after = 0
    while True:
        with engine.connect() as conn:
            items = checkins_after(conn, logbook_id=logbook_id, after=after, limit=2000)
        for c in items:
            yield [neutralise(v) for v in (c["id"], c["at"], c["logbook_label"], c["name"],
                                           c["id_number"], c["status"], c["popup_kind"],
                                           "是" if c["alert"] else "否",
                                           "是" if c["minor"] else "否", c["via"])]
        if len(items) < 2000:
            return
        after = items[-1]["id"]


def _disposition(logbook: Logbook, ext: str) -> str:
    name = f"logbook-{logbook.id}-{logbook.label}.{ext}"
    return f"attachment; filename=\"logbook-{logbook.id}.{ext}\"; filename*=UTF-8''{quote(name)}"


def csv_response(engine: Engine, logbook: Logbook) -> Response:
    def generate() -> Iterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")
        writer.writerow(HEADERS)
        for row in _rows(engine, logbook.id):
            writer.writerow(row)
            if buf.tell() > 64 * 1024:
                yield buf.getvalue().encode("utf-8")
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue().encode("utf-8")

    return StreamingResponse(
        generate(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": _disposition(logbook, "csv")},
    )


async def xlsx_response(engine: Engine, logbook: Logbook) -> Response:
    def build() -> bytes:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(title="登记簿")
        ws.append(HEADERS)
        for row in _rows(engine, logbook.id):
            ws.append(row)
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()

    data = await run_in_threadpool(build)
    return Response(
        data,
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": _disposition(logbook, "xlsx")},
    )
