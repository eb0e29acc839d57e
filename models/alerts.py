"""What a push notification and an SMS notice say (docs/push.md).

Both may show on a locked screen, so they carry the status and where to look, never a name,
an ID number or the official's reason (the citizen's own page shows that once signed in).
A push payload is JSON; the service worker shows `title`/`body` (Chinese) or `en` for a
browser in another language, with `tag` (one per kind: a newer change replaces the older).
"""

from __future__ import annotations

import orjson

from models.status import LABELS, Status

# What the service worker gets decrypted, at most this many bytes: push services take 4096
# bytes of ciphertext and aes128gcm adds 103 (header, padding delimiter, tag).
MAX_PAYLOAD = 3800
TEXT_CHARS = 300  # an announcement's opening; the page shows all of it
URGENT = {Status.RED.value, Status.YELLOW.value}  # Urgency: high; and an SMS without push
STATUS_TAG = "scanbook-status"
NOTICE_TAG = "scanbook-notice"
HOME = "/"

_POPUP = {"travel": ("行程核验", "itinerary check"), "risk_area": ("风险地区", "risk area")}
_TITLE = {"zh": "健康状态变更", "en": "Health status changed"}


def _label(status: str, popup_kind: str | None) -> tuple[str, str]:
    zh, en = LABELS.get(status, (status, status))
    if status == Status.POPUP and popup_kind in _POPUP:
        kind_zh, kind_en = _POPUP[popup_kind]
        zh, en = f"{zh}（{kind_zh}）", f"{en} ({kind_en})"
    return zh, en


def status_payload(*, notice_id: int, status: str, popup_kind: str | None, at: str) -> dict:
    """A status change for the citizen's browsers."""
    zh, en = _label(status, popup_kind)
    return {"kind": "status", "id": notice_id, "status": status, "popup_kind": popup_kind,
            "at": at, "url": HOME, "tag": STATUS_TAG,
            "title": _TITLE["zh"], "body": f"您的健康状态已变为：{zh}。点击查看详情和防控要求。",
            "en": {"title": _TITLE["en"],
                   "body": f"Your health status is now: {en}. Tap for details and what to do."}}


def notice_payload(*, notice_id: int, text: str, at: str) -> dict:
    """An announcement to everyone; a long one is cut (the page shows all of it)."""
    body = text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…"
    return {"kind": "notice", "id": notice_id, "status": None, "at": at, "url": HOME,
            "tag": NOTICE_TAG, "title": "通知公告", "body": body,
            "en": {"title": "Announcement", "body": body}}


def encode(payload: dict) -> bytes:
    data = orjson.dumps(payload)
    if len(data) > MAX_PAYLOAD:  # cannot happen with the limits above; never send a 413
        raise ValueError(f"push payload of {len(data)} bytes")
    return data


def urgency(status: str | None) -> str:
    """The Urgency header (RFC 8030): red and yellow wake a sleeping phone at once."""
    return "high" if status in URGENT else "normal"


def sms_text(status: str, public_url: str) -> str:
    """The SMS notice of a change to red or yellow (citizens without push)."""
    zh, _en = _label(status, None)
    return (f"【扫码登记】您的健康状态已变为：{zh}。请登录 {public_url} 查看详情，"
            "并按所在社区要求做好防控。")
