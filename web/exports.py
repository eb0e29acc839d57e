"""Logbook exports (masked): CSV with a BOM so Excel shows Chinese, and XLSX. They speak the
registrar's language (the page's ?lang= or the language cookie): headers, status names
(未见异常/居家观察/集中观察/弹窗 or No abnormality/…), yes/no, how the visitor checked in, and
Beijing time to the second ("2026-12-06 18:50:05")."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from urllib.parse import quote

from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from models.checkins import checkins_after
from models.tables import Logbook
from models.timeutil import BEIJING, parse_iso
from web import i18n

HEADERS = {
    "zh": ["编号", "登记时间（北京时间）", "登记簿", "姓名", "身份证号", "健康状态", "弹窗类型",
           "异常", "未成年人", "登记方式", "离场时间（北京时间）"],
    "en": ["No.", "Checked in (Beijing time)", "Logbook", "Name", "ID number", "Status",
           "Popup", "Abnormal", "Minor", "How", "Left (Beijing time)"],
}
_FORMULA_START = ("=", "+", "-", "@")
# C0 and C1 control characters (tab and newline too): an XLSX cell cannot hold most of them
# (openpyxl refuses the workbook: the export answered 500), and none belongs in a label or a
# name. They are dropped, in the CSV as in the XLSX.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def neutralise(value: object) -> str:
    """A cell as safe text: control characters dropped, and a cell that a spreadsheet would
    run as a formula (= + - @, also once the control characters are gone) prefixed with a
    quote (CSV/formula injection)."""
    text = _CONTROL.sub("", "" if value is None else str(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


def beijing_time(value: str | None) -> str:
    """An ISO timestamp as a registrar reads it: Beijing time, to the second, no offset."""
    if not value:
        return ""
    return parse_iso(value, "at").astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _rows(engine: Engine, logbook_id: int, lang: str) -> Iterator[list[str]]:
    t = i18n.translator(lang)

    def word(prefix: str, value: str | None) -> str:
        if not value:
            return ""
        label = t(f"{prefix}{value}")
        return value if label == f"{prefix}{value}" else label  # a value without a name

    yes, no = t("yes"), t("no")
    after = 0
    while True:
        with engine.connect() as conn:
            items = checkins_after(conn, logbook_id=logbook_id, after=after, limit=2000)
        for c in items:
            yield [neutralise(v) for v in (c["id"], beijing_time(c["at"]), c["logbook_label"],
                                           c["name"], c["id_number"],
                                           word("status_", c["status"]),
                                           word("popup_", c["popup_kind"]),
                                           yes if c["alert"] else no,
                                           yes if c["minor"] else no, word("via_", c["via"]),
                                           beijing_time(c["left_at"]))]
        if len(items) < 2000:
            return
        after = items[-1]["id"]


def _disposition(logbook: Logbook, ext: str) -> str:
    name = f"logbook-{logbook.id}-{logbook.label}.{ext}"
    return f"attachment; filename=\"logbook-{logbook.id}.{ext}\"; filename*=UTF-8''{quote(name)}"


def csv_response(engine: Engine, logbook: Logbook, lang: str = "zh") -> Response:
    def generate() -> Iterator[bytes]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")
        writer.writerow(HEADERS[lang])
        for row in _rows(engine, logbook.id, lang):
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


async def xlsx_response(engine: Engine, logbook: Logbook, lang: str = "zh") -> Response:
    def build() -> bytes:
        from openpyxl import Workbook

        wb = Workbook(write_only=True)
        ws = wb.create_sheet(title="登记簿" if lang == "zh" else "Logbook")
        ws.append(HEADERS[lang])
        for row in _rows(engine, logbook.id, lang):
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
