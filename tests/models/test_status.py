import pytest

from models.errors import ValidationFailed
from models.status import PopupKind, Status, is_abnormal, parse_status


def test_only_green_is_normal():
    assert not is_abnormal("green")
    assert all(is_abnormal(s) for s in ("yellow", "red", "popup"))


def test_popup_needs_its_kind():
    assert parse_status("popup", "travel") == (Status.POPUP, PopupKind.TRAVEL)
    with pytest.raises(ValidationFailed):
        parse_status("popup", None)
    with pytest.raises(ValidationFailed):
        parse_status("yellow", "travel")
    with pytest.raises(ValidationFailed):
        parse_status("purple")


# --- precedence: red > popup > yellow > green (risk_area > travel inside popup) ------------

from itertools import combinations  # noqa: E402

from models.status import Decision, decide, severity  # noqa: E402

ORDER = [("green", None), ("yellow", None), ("popup", "travel"), ("popup", "risk_area"),
         ("red", None)]


@pytest.mark.parametrize(("milder", "stricter"), list(combinations(ORDER, 2)))
def test_every_precedence_pair(milder, stricter):
    assert severity(*milder) < severity(*stricter)
    # A measure for many raises the milder state and keeps the stricter one.
    assert decide(milder, stricter, raise_only=True) is Decision.CHANGED
    assert decide(stricter, milder, raise_only=True) is Decision.KEPT
    # An explicit per-person change may go either way.
    assert decide(milder, stricter, raise_only=False) is Decision.CHANGED
    assert decide(stricter, milder, raise_only=False) is Decision.CHANGED


@pytest.mark.parametrize("state", ORDER)
def test_an_equal_state_is_kept_either_way(state):
    assert decide(state, state, raise_only=True) is Decision.KEPT
    assert decide(state, state, raise_only=False) is Decision.KEPT


def test_contract_order_and_popup_above_yellow():
    ranks = [severity(s, k)[0] for s, k in ORDER]
    assert ranks == sorted(ranks) and severity("popup", "travel") > severity("yellow")
    assert severity("popup", "risk_area") < severity("red")
    with pytest.raises(ValueError):
        severity("purple")
