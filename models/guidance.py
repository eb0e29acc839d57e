"""What each health state means for the citizen who holds it: the advice on the status card
and, for a popup, the action that clears it."""

from __future__ import annotations

from models.status import LABELS, PopupKind, Status

ITINERARY_VERIFY_PATH = "/api/me/itinerary-verification"

# (status, popup kind) → advice shown under the status on the citizen's card.
ADVICE: dict[tuple[str, str | None], dict[str, str]] = {
    (Status.GREEN, None): {
        "zh": "未见异常。请继续做好个人防护，进入场所时主动扫码登记。",
        "en": "No abnormality. Keep up personal protection and scan the code when you enter "
              "a venue.",
    },
    (Status.YELLOW, None): {
        "zh": "居家观察：请遵守所在社区的居家观察规定，不外出、不聚集，"
              "按要求配合健康监测和核酸检测。",
        "en": "Home observation: follow your community's home-observation rules — stay at "
              "home, avoid gatherings, and take part in health monitoring and testing as asked.",
    },
    (Status.RED, None): {
        "zh": "集中观察：请立即联系所在区疾控中心，按其安排接受集中观察。",
        "en": "Centralized observation: contact your district CDC (疾控中心) now and follow "
              "its arrangements for centralized observation.",
    },
    (Status.POPUP, PopupKind.TRAVEL): {
        "zh": "弹窗（行程核验）：请点击“继续”，前往国家政务服务平台核验您的行程；"
              "核验通过后弹窗解除。",
        "en": "Popup (itinerary check): press 继续 (continue) to verify your itinerary at the "
              "national government service platform; the popup clears once it passes.",
    },
    (Status.POPUP, PopupKind.RISK_AREA): {
        "zh": "弹窗（风险地区）：您近期到访过风险地区，请立即向所在社区或单位报告。",
        "en": "Popup (risk area): you have recently been in a risk area — report to your "
              "community or work unit now.",
    },
}


def advice(status: str, popup_kind: str | None) -> dict[str, str]:
    """The card's advice text {zh, en} for a state (a popup without a known kind: generic)."""
    found = ADVICE.get((status, popup_kind if status == Status.POPUP else None))
    if found is not None:
        return found
    return {"zh": "请按提示处理。", "en": "Please follow the instructions shown."}


# What staff at the door do with an abnormal status, and whom the visitor calls: the scan
# result card and the registrar's alerts show it. 12345 is Beijing's citizen service hotline,
# 12320 the public-health hotline.
AT_THE_DOOR: dict[tuple[str, str | None], dict[str, dict[str, str]]] = {
    (Status.YELLOW, None): {
        "entry": {"zh": "请勿入场", "en": "Do not enter"},
        "contact": {"zh": "请联系所在社区（村）居委会，或拨打12345。",
                    "en": "Call your community (village) committee, or 12345."},
        "staff": {"zh": "劝其返回居家观察，不得入场；如有疑问请联系其所在社区。",
                  "en": "Ask the visitor to go home to observation; no entry. For questions, "
                        "call their community."},
    },
    (Status.RED, None): {
        "entry": {"zh": "请勿入场", "en": "Do not enter"},
        "contact": {"zh": "请立即联系所在区疾控中心，或拨打12320。",
                    "en": "Call your district CDC now, or the health hotline 12320."},
        "staff": {"zh": "不得入场：请其原地等候并保持距离，立即报告属地社区和区疾控中心。",
                  "en": "No entry: ask the visitor to wait apart and report at once to the "
                        "local community and the district CDC."},
    },
    (Status.POPUP, PopupKind.TRAVEL): {
        "entry": {"zh": "核验前请勿入场", "en": "Do not enter before the check"},
        "contact": {"zh": "行程核验有疑问请拨打12345。",
                    "en": "Questions about the itinerary check: call 12345."},
        "staff": {"zh": "请其点击“继续”完成行程核验，转为未见异常后方可入场。",
                  "en": "Ask the visitor to press 继续 (continue) and verify the itinerary; "
                        "entry once the card is green."},
    },
    (Status.POPUP, PopupKind.RISK_AREA): {
        "entry": {"zh": "请勿入场", "en": "Do not enter"},
        "contact": {"zh": "请立即向所在社区报告，或拨打12345。",
                    "en": "Report to your community now, or call 12345."},
        "staff": {"zh": "不得入场：请其立即向所在社区报告，并留下联系方式。",
                  "en": "No entry: ask the visitor to report to their community now."},
    },
}


def at_the_door(status: str, popup_kind: str | None) -> dict | None:
    """{entry, contact, staff} ({zh, en} each) for an abnormal state; None for green."""
    if status == Status.GREEN:
        return None
    found = AT_THE_DOOR.get((status, popup_kind if status == Status.POPUP else None))
    return found or {"entry": {"zh": "请勿入场", "en": "Do not enter"},
                     "contact": {"zh": "请拨打12345咨询。", "en": "Call 12345 for help."},
                     "staff": {"zh": "不得入场，请联系属地社区。",
                               "en": "No entry; call the local community."}}


def action(status: str, popup_kind: str | None, itinerary_url: str) -> dict | None:
    """The button a popup card shows, or None for the other states."""
    if status != Status.POPUP:
        return None
    if popup_kind == PopupKind.TRAVEL:
        return {"kind": "itinerary", "label": {"zh": "继续", "en": "Continue"},
                "url": itinerary_url, "verify": ITINERARY_VERIFY_PATH}
    return {"kind": "report", "label": {"zh": "我已知晓", "en": "I understand"},
            "text": {"zh": "请立即向所在社区或单位报告。",
                     "en": "Report to your community or work unit now."}}


def guidance(status: str, popup_kind: str | None, itinerary_url: str) -> dict:
    """The card's explanation of a state: label, abnormal flag, advice and action."""
    zh, en = next((pair for key, pair in LABELS.items() if key == status), (status, status))
    return {"label": {"zh": zh, "en": en}, "abnormal": status != Status.GREEN,
            "advice": advice(status, popup_kind),
            "door": at_the_door(status, popup_kind),
            "action": action(status, popup_kind, itinerary_url)}


def status_guide(itinerary_url: str) -> list[dict]:
    """Every state the card can show, for clients (GET /api/status-guide)."""
    return [{"status": str(status), "popup_kind": str(kind) if kind else None,
             **guidance(status, kind, itinerary_url)} for status, kind in ADVICE]
