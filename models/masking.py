"""What a registrar, a wallboard or another citizen may see: masked names and ID numbers."""

from __future__ import annotations

from models.errors import InvalidIdNumber
from models.idnumber import parse_id_number

# 复姓: compound surnames stay whole (欧阳娜娜 → 欧阳**).
COMPOUND_SURNAMES = frozenset(
    """欧阳 太史 端木 上官 司马 东方 独孤 南宫 万俟 闻人 夏侯 诸葛 尉迟 公羊 赫连 澹台 皇甫
    宗政 濮阳 公冶 太叔 申屠 公孙 慕容 仲孙 钟离 长孙 宇文 司徒 鲜于 司空 闾丘 子车 亓官 司寇
    巫马 公西 颛孙 壤驷 公良 漆雕 乐正 宰父 谷梁 拓跋 夹谷 轩辕 令狐 段干 百里 呼延 东郭 南门
    羊舌 微生 公户 公玉 公仪 梁丘 公仲 公上 公门 公山 公坚 左丘 公伯 西门 公祖 第五 公乘 贯丘
    公皙 南荣 东里 东宫 仲长 子书 子桑 即墨 达奚 褚师 呼延 归海 羊舌 微生 岳帅 缑亢 况后 有琴
    梁丘 左丘 东门 西门 商牟 佘佴 伯赏 南宫 墨哈 谯笪 年爱 阳佟 第五 言福""".split()
)


def surname(name: str) -> str:
    name = name.strip()
    if len(name) > 2 and name[:2] in COMPOUND_SURNAMES:
        return name[:2]
    return name[:1]


def mask_name(name: str) -> str:
    """The surname, then one `*` per remaining character: 张三丰 → 张**."""
    name = name.strip()
    head = surname(name)
    return head + "*" * (len(name) - len(head))


def mask_id_number(id_number: str) -> str:
    """First 2 and last 2 characters kept, the 14 between as `*`."""
    return id_number[:2] + "*" * (len(id_number) - 4) + id_number[-2:]


def mask_submitted_id(raw: object) -> str | None:
    """What a job's result may show of an ID number an official sent (per-row errors): a
    well-formed number masked like any other (`mask_id_number`); anything else only as its
    first 2 characters and its length in `*` (at most 40 shown) — a near-miss with a typo is
    still somebody's number. None for a value that is not a string."""
    if not isinstance(raw, str):
        return None
    try:
        return mask_id_number(parse_id_number(raw).value)
    except InvalidIdNumber:
        pass
    value = raw.strip()
    if len(value) < 6:
        return "*" * len(value)
    masked = value[:2] + "*" * (len(value) - 2)
    return masked if len(masked) <= 40 else masked[:39] + "…"
