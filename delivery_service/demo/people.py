"""Invented but realistic Vietnamese recipients and addresses for the demo (deterministic with a seed).

Family names in roughly their national frequency; middle and given names by gender; house numbers on
streets of Quảng Ngãi and Đà Nẵng, or hamlets and residential groups for rural communes.
"""

from __future__ import annotations

import random

FAMILY = (("Nguyễn", 31), ("Trần", 11), ("Lê", 9), ("Phạm", 7), ("Huỳnh", 5), ("Hoàng", 4), ("Phan", 4),
          ("Vũ", 3), ("Võ", 4), ("Đặng", 2), ("Bùi", 2), ("Đỗ", 2), ("Hồ", 2), ("Ngô", 1), ("Dương", 1),
          ("Lý", 1), ("Đinh", 1), ("Trương", 1), ("Đoàn", 1), ("Lương", 1))
MIDDLE = {"f": ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Minh", "Thanh", "Kim", "Bảo", "Hồng", "Mỹ", "Diệu"),
          "m": ("Văn", "Văn", "Văn", "Minh", "Quốc", "Đức", "Hữu", "Thành", "Công", "Xuân", "Anh", "Ngọc")}
GIVEN = {"f": ("Hoa", "Lan", "Hương", "Mai", "Tuyết", "Ánh", "Ánh Tuyết", "Trang", "Thảo", "Hằng", "Linh",
               "Nhung", "Oanh", "Kiều Oanh", "Phương", "Quyên", "Vy", "Yến", "Ngân", "Hạnh", "Thủy", "Dung",
               "Nga", "Trinh", "Hiền", "Loan", "Diễm", "Như", "My", "Châu", "Uyên", "Thư"),
         "m": ("Bình", "Cường", "Dũng", "Đức", "Hải", "Hùng", "Khoa", "Long", "Minh", "Nam", "Phúc", "Quang",
               "Sơn", "Tâm", "Thắng", "Tuấn", "Việt", "Vinh", "Hiếu", "Trung", "Khánh", "Đạt", "Lộc", "Tài",
               "Nhân", "Thịnh", "Toàn", "Huy", "Kiên", "Phong", "An", "Bảo")}
STREETS = ("Hùng Vương", "Lê Lợi", "Quang Trung", "Phan Đình Phùng", "Nguyễn Nghiêm", "Trần Hưng Đạo",
           "Lê Trung Đình", "Phạm Văn Đồng", "Nguyễn Du", "Bà Triệu", "Trương Quang Trọng", "Nguyễn Chánh",
           "Chu Văn An", "Lý Thường Kiệt", "Nguyễn Tự Tân", "Huỳnh Thúc Kháng", "Đinh Tiên Hoàng",
           "Hai Bà Trưng", "Võ Thị Sáu", "Lê Thánh Tôn", "Điện Biên Phủ", "Tôn Đức Thắng")
HAMLETS = ("Thôn Phú Lộc", "Thôn Trường Thọ", "Thôn An Hòa", "Thôn Tân Phú", "Thôn Đông", "Thôn Tây",
           "Thôn Thạch Bích", "Thôn Mỹ Khê", "Tổ dân phố 3", "Tổ dân phố 5", "Khu dân cư số 2", "Xóm Bàu")


def person_name(rng: random.Random) -> str:
    """A full name: family, middle, given ("Nguyễn Thị Ánh Tuyết")."""
    family = rng.choices([f for f, _w in FAMILY], weights=[w for _f, w in FAMILY])[0]
    gender = rng.choice("fm")
    given = rng.choice(GIVEN[gender])
    middle = rng.choice(MIDDLE[gender])
    return f"{family} {given}" if " " in given and rng.random() < 0.3 else f"{family} {middle} {given}"


def street_address(rng: random.Random) -> str:
    """A house on a street, an alley off one, or a hamlet or residential group."""
    roll = rng.random()
    if roll < 0.55:
        return f"{rng.randint(1, 420)} {rng.choice(STREETS)}"
    if roll < 0.75:
        return f"{rng.randint(1, 120)}/{rng.randint(1, 30)} {rng.choice(STREETS)}"
    return f"{rng.choice(('Số nhà ', 'Nhà ', ''))}{rng.randint(1, 90)}, {rng.choice(HAMLETS)}".replace(
        ", Thôn", ", thôn").replace(", Tổ", ", tổ").replace(", Khu", ", khu").replace(", Xóm", ", xóm")
