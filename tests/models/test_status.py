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
