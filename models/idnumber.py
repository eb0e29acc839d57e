"""Resident ID numbers (居民身份证号码) checked like GB 11643-1999: MOD 11-2 check character."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from models.errors import InvalidIdNumber

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# Province-level codes of GB/T 2260 (first two digits).
_PROVINCES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82", "83", "91",
}
MINOR_AGE = 16


@dataclass(frozen=True)
class IdNumber:
    value: str
    birth_date: date

    def age_on(self, today: date) -> int:
        years = today.year - self.birth_date.year
        if (today.month, today.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def is_minor(self, today: date | None = None) -> bool:
        return self.age_on(today or date.today()) < MINOR_AGE


def check_character(first17: str) -> str:
    """The GB 11643 MOD 11-2 check character for the first 17 digits."""
    total = sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def parse_id_number(raw: object, *, today: date | None = None) -> IdNumber:
    """Validate and normalise (lower-case x → X); raise InvalidIdNumber saying what is wrong."""
    if not isinstance(raw, str):
        raise InvalidIdNumber("身份证号码必须是字符串 / ID number must be a string")
    value = raw.strip().upper()
    if len(value) != 18:
        raise InvalidIdNumber(
            f"身份证号码应为18位，实际为{len(value)}位 / ID number must have 18 characters, "
            f"got {len(value)}"
        )
    if not value[:17].isascii() or not value[:17].isdigit():
        raise InvalidIdNumber("前17位必须是数字 / the first 17 characters must be digits")
    if not (value[17].isdigit() or value[17] == "X"):
        raise InvalidIdNumber("最后一位必须是数字或X / the last character must be a digit or X")
    if value[:2] not in _PROVINCES:
        raise InvalidIdNumber(
            f"地区码{value[:2]}不存在 / region code {value[:2]} is not a province code"
        )
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise InvalidIdNumber(
            f"出生日期{value[6:14]}不是有效日期 / birth date {value[6:14]} is not a real date"
        ) from None
    today = today or date.today()
    if born > today or born.year < 1900:
        raise InvalidIdNumber(
            f"出生日期{value[6:14]}不可能 / birth date {value[6:14]} is in the future "
            "or before 1900"
        )
    expected = check_character(value[:17])
    if value[17] != expected:
        raise InvalidIdNumber(
            f"校验码错误，应为{expected} / check character is wrong (expected {expected})"
        )
    return IdNumber(value=value, birth_date=born)


def make_id_number(region: str, born: date, sequence: int) -> str:
    """Build a valid ID number (tests, benchmarks, demo data)."""
    first17 = f"{region}{born:%Y%m%d}{sequence % 1000:03d}"
    return first17 + check_character(first17)
