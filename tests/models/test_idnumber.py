from datetime import date

import pytest

from models.errors import InvalidIdNumber
from models.idnumber import check_character, make_id_number, parse_id_number

# A published sample number with a valid GB 11643 check character.
SAMPLE = "11010519491231002X"


def test_known_valid_number_and_lowercase_x():
    assert check_character(SAMPLE[:17]) == "X"
    assert parse_id_number(SAMPLE).value == SAMPLE
    parsed = parse_id_number(SAMPLE.lower())
    assert parsed.value == SAMPLE and parsed.birth_date == date(1949, 12, 31)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("1101051949123100", "18"),  # too short
        ("110105194912310021X", "18"),  # too long
        ("11010519491231002A", "last character"),
        ("1101051949A231002X", "digits"),
        ("110105194912310021", "expected X"),  # wrong check character
        ("990105194912310020", "region"),
        (make_id_number("110101", date(2001, 1, 1), 1)[:10] + "0230" + "0011", "real date"),
        (None, "string"),
        (12345, "string"),
    ],
)
def test_invalid_numbers_say_what_is_wrong(raw, fragment):
    with pytest.raises(InvalidIdNumber) as info:
        parse_id_number(raw)
    assert fragment in info.value.message
    assert info.value.code == "invalid_id_number"


def test_february_30_and_future_birth_dates_are_refused():
    feb30 = "11010120010230001"
    with pytest.raises(InvalidIdNumber, match="real date"):
        parse_id_number(feb30 + check_character(feb30))
    future = make_id_number("110101", date(2030, 1, 1), 5)
    with pytest.raises(InvalidIdNumber, match="future"):
        parse_id_number(future, today=date(2026, 11, 29))


def test_leap_day_is_a_real_date():
    assert parse_id_number(make_id_number("310101", date(2000, 2, 29), 3)).birth_date == date(
        2000, 2, 29
    )


def test_minor_is_under_16_on_the_day():
    born = date(2010, 11, 29)
    parsed = parse_id_number(make_id_number("110101", born, 7))
    assert parsed.is_minor(date(2026, 11, 28)) is True  # the day before the 16th birthday
    assert parsed.is_minor(date(2026, 11, 29)) is False  # 16 today


def test_make_id_number_always_validates():
    for seq in range(200):
        parse_id_number(make_id_number("440301", date(1990, 5, 17), seq))
