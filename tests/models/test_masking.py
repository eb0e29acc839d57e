import pytest

from models.masking import mask_id_number, mask_name


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三丰", "张**"),
        ("李四", "李*"),
        ("王", "王"),
        ("欧阳娜娜", "欧阳**"),
        ("司马相如", "司马**"),
        ("诸葛亮", "诸葛*"),
        ("上官婉儿", "上官**"),
        ("欧阳", "欧*"),  # a two-character name is surname + given name
        (" 张三 ", "张*"),
    ],
)
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_mask_id_number_keeps_first_and_last_two():
    masked = mask_id_number("11010519491231002X")
    assert masked == "11" + "*" * 14 + "2X"
    assert len(masked) == 18
