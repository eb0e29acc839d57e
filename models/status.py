"""Health statuses (健康宝状态) and what each means for a registrar and a citizen."""

from __future__ import annotations

from enum import StrEnum

from models.errors import ValidationFailed


class Status(StrEnum):
    GREEN = "green"  # 未见异常
    YELLOW = "yellow"  # 居家观察
    RED = "red"  # 集中观察
    POPUP = "popup"  # 弹窗


class PopupKind(StrEnum):
    TRAVEL = "travel"
    RISK_AREA = "risk_area"


LABELS = {
    Status.GREEN: ("未见异常", "No abnormality"),
    Status.YELLOW: ("居家观察", "Home observation"),
    Status.RED: ("集中观察", "Centralized observation"),
    Status.POPUP: ("弹窗", "Action needed"),
}

# A check-in's status when the visitor is not a registered citizen under the name and ID
# number the registrar typed (an unregistered visitor's proxy check-in): there is no status
# to show, so the registrar must check the person's health code by hand. Not a status anyone
# can be given (parse_status refuses it); abnormal, so it raises the alert at the console.
VISITOR_STATUS = "unknown"
VISITOR_LABEL = ("未登记，请人工核验", "Not registered: check manually")


def is_abnormal(status: str) -> bool:
    """Every status but green raises the alert at a registrar's console."""
    return status != Status.GREEN


def parse_status(status: object, popup_kind: object = None) -> tuple[Status, PopupKind | None]:
    """Validate a status and its popup kind (required for popup, refused otherwise)."""
    try:
        value = Status(status)
    except ValueError:
        raise ValidationFailed(
            f"未知状态 {status!r} / unknown status; use green, yellow, red or popup"
        ) from None
    if value is Status.POPUP:
        try:
            return value, PopupKind(popup_kind)
        except ValueError:
            raise ValidationFailed(
                "弹窗状态需要 popup_kind: travel 或 risk_area / popup needs popup_kind "
                "travel or risk_area"
            ) from None
    if popup_kind not in (None, ""):
        raise ValidationFailed("只有弹窗状态可以带 popup_kind / popup_kind is only for popup")
    return value, None


# Precedence (../shared/CONTRACT.md "Additions"): red > popup > yellow > green. Inside popup a
# risk-area popup outranks a travel one: the itinerary platform can clear a travel popup, only
# an official can clear a risk-area one, so turning travel into risk_area is a raise.
_LEVEL = {Status.GREEN: 0, Status.YELLOW: 1, Status.POPUP: 2, Status.RED: 3}
_POPUP_LEVEL = {PopupKind.TRAVEL: 0, PopupKind.RISK_AREA: 1}


def severity(status: str, popup_kind: str | None = None) -> tuple[int, int]:
    """How strict a state is; compare two with < and >=. An unknown popup kind counts as the
    mildest popup."""
    level = _LEVEL[Status(status)]
    if level != _LEVEL[Status.POPUP]:
        return level, 0
    return level, _POPUP_LEVEL.get(popup_kind, 0)  # StrEnum keys match plain strings


class Decision(StrEnum):
    """What a status change does to one person."""

    CHANGED = "changed"
    KEPT = "kept"  # an equal state, or (for a measure that only raises) a stricter one


def decide(old: tuple[str, str | None], new: tuple[str, str | None], *,
           raise_only: bool) -> Decision:
    """The one rule every status writer follows. An explicit per-person change
    (raise_only=False) sets any different state, lowering included; a measure for many
    (an exposure, a sweep: raise_only=True) changes only people whose state is milder."""
    if old == new:
        return Decision.KEPT
    if raise_only and severity(*old) >= severity(*new):
        return Decision.KEPT
    return Decision.CHANGED
