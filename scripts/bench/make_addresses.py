"""Make the labelled address set of scripts/bench/addresses.py from the unit data, deterministically.

Every address is drawn from the ``vietnamadminunits`` package's units (the data the service loads)
with a seeded random generator, so the same seed and package version give the same file:

    .venv/bin/python scripts/bench/make_addresses.py            # tests/data/addresses/addresses.csv
    .venv/bin/python scripts/bench/make_addresses.py --seed 7 --per-kind 500 --out /tmp/a.csv

Kinds (``--per-kind`` of each; the 2025 structure unless said):

- ``clean_full``: "[detail, ]Phường X, Tỉnh Y" with the full names as the data writes them;
- ``abbreviated``: P., X., ĐK., TP., T. or no kind, with or without a space after the dot;
- ``no_diacritics``: full or abbreviated, without diacritics, in lower, upper or given case;
- ``legacy``: the three-level structure (commune, district, province; full, abbreviated with Q.,
  H., TX., TP., P., X., TT., or unaccented), dated before 1 Jul 2025: the answer is the legacy commune;
- ``legacy_2025``: the same kind of text dated after the reform: the answer is the 2025 successor;
- ``swapped``: the province first, then the commune, then the detail;
- ``typo``: one letter of the commune's name replaced, dropped, doubled or swapped with the next
  (names of at least five letters; a typo that is another unit's name in the province is redrawn);
- ``noisy``: the street or hamlet written after the commune, notes, phone numbers, "Việt Nam",
  postcodes, commas left out (two to four of these at once).

Columns: id, kind, on, text, province, district, commune (the codes expected on ``on``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

KINDS = ("clean_full", "abbreviated", "no_diacritics", "legacy", "legacy_2025", "swapped", "typo", "noisy")
STREETS = ("Hùng Vương", "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Huệ", "Quang Trung", "Lý Thường Kiệt",
           "Hai Bà Trưng", "Phan Đình Phùng", "Đinh Tiên Hoàng", "Lê Duẩn", "Nguyễn Trãi", "Trần Phú",
           "Điện Biên Phủ", "Nguyễn Văn Linh", "Võ Thị Sáu", "Bạch Đằng", "Lê Thánh Tông", "Ngô Quyền",
           "Tôn Đức Thắng", "Phạm Văn Đồng", "Nguyễn Du", "Hoàng Diệu", "Nguyễn Thái Học", "Trường Chinh",
           "Lạc Long Quân", "Cách Mạng Tháng Tám", "30 Tháng 4", "Nguyễn Chí Thanh", "Lê Hồng Phong",
           "Hoàng Văn Thụ", "Phan Chu Trinh", "Nguyễn Nghiêm", "Bà Triệu", "Chu Văn An", "Lê Trung Đình")
HAMLETS = ("Phú Thọ", "An Hòa", "Tân Lợi", "Đông", "Tây", "Bắc Sơn", "Trung Hòa", "Hòa Bình", "Thắng Lợi",
           "Phước Thạnh", "An Bình", "Long Phú", "Thạnh Đức", "Vĩnh An", "Bình Minh", "Hà Nam", "Thái Bình")
NOTES = ("(gọi trước khi giao)", "ghi chú: giao giờ hành chính", "(gần chợ)", "(cạnh UBND xã)",
         "Lưu ý: gọi trước 30 phút", "(nhà màu xanh, cổng sắt)", "(giao buổi sáng)")
ABBR = {"phường": ("P.", "P. ", "p.", "P "), "xã": ("X.", "X. ", "x.", "xã "),
        "thị trấn": ("TT.", "TT. ", "tt "), "đặc khu": ("ĐK ", "Đặc khu "), "quận": ("Q.", "Q. ", "q.", "Q "),
        "huyện": ("H.", "H. ", "h.", "huyện "),
        "thị xã": ("TX.", "TX. ", "tx "), "thành phố": ("TP.", "TP. ", "Tp.", "tp ", "Tp "),
        "tỉnh": ("T.", "", "", "tỉnh ")}
PREFIXES = ("Thành phố ", "Thị xã ", "Thị trấn ", "Đặc khu ", "Tỉnh ", "Quận ", "Huyện ", "Phường ", "Xã ")


def strip_marks(text: str) -> str:
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFC", "".join(
        c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)))


def split_kind(name: str) -> tuple[str, str]:
    """("Phường", "Cẩm Thành") from "Phường Cẩm Thành"."""
    for p in PREFIXES:
        if name.startswith(p) and len(name) > len(p):
            return p.strip(), name[len(p):]
    return "", name


class Maker:
    def __init__(self, seed: int) -> None:
        from delivery_service.addresses.parser import fold, units_from_package
        from delivery_service.units.succession import successors

        self.r = random.Random(seed)
        self.fold = fold
        units = units_from_package()
        self.by_id = {u.id: u for u in units}
        self.communes = {s: sorted((u for u in units if u.level == "commune" and u.id.startswith(s)),
                                   key=lambda u: u.code) for s in ("2025", "legacy")}
        self.successor = successors()
        self.new_by_code = {u.code: u for u in self.communes["2025"]}
        # every unit key per province, to keep a typo from being a real name
        self.keys_in: dict[str, set[str]] = {}
        for u in units:
            p = self.province_of(u)
            self.keys_in.setdefault(p.id, set()).add(fold(split_kind(u.name)[1]).replace(" ", ""))

    def province_of(self, u):  # noqa: ANN001, ANN201
        while u.parent_id is not None:
            u = self.by_id[u.parent_id]
        return u

    # --- pieces ------------------------------------------------------------------------------------

    def detail(self) -> str:
        r = self.r
        n = r.randint(1, 199)
        street = r.choice(STREETS)
        return r.choice((f"Số {n} {street}", f"{n} {street}", f"{n}/{r.randint(1, 30)} đường {street}",
                         f"Kiệt {n} {street}", f"Ngõ {n} {street}", f"thôn {r.choice(HAMLETS)}",
                         f"thôn {r.randint(1, 12)}", f"xóm {r.choice(HAMLETS)}", f"ấp {r.choice(HAMLETS)}",
                         f"tổ {r.randint(1, 30)}", f"khu phố {r.randint(1, 12)}",
                         f"tổ dân phố {r.randint(1, 20)}"))

    def abbr(self, name: str, kind_word: str | None = None) -> str:
        kind, short = split_kind(name)
        forms = ABBR.get(kind.lower())
        if not forms:
            return name
        form = self.r.choice(forms)
        if short.isdigit() and form.endswith(" ") and self.r.random() < 0.5:
            form = form.strip()  # P12, Q1
        return f"{form}{short}"

    def province_abbr(self, name: str) -> str:
        short = split_kind(name)[1]
        special = {"Hồ Chí Minh": ("TP.HCM", "TP HCM", "HCM", "Tp. Hồ Chí Minh", "TPHCM"),
                   "Hà Nội": ("HN", "TP. Hà Nội", "Hà Nội")}
        if short in special and self.r.random() < 0.6:
            return self.r.choice(special[short])
        return self.abbr(name)

    def case(self, text: str) -> str:
        return self.r.choice((text, text, text.lower(), text.upper(), text.title()))

    # --- kinds -------------------------------------------------------------------------------------

    def pick(self, structure: str):  # noqa: ANN201
        c = self.r.choice(self.communes[structure])
        d = self.by_id[c.parent_id] if structure == "legacy" else None
        if d is not None and d.level != "district":
            d = None
        return c, d, self.province_of(c)

    def with_detail(self, parts: list[str], p: float = 0.7) -> list[str]:
        return [self.detail(), *parts] if self.r.random() < p else parts

    def make(self, kind: str) -> tuple[str, dt.date, str, str, str]:
        r = self.r
        legacy = kind in ("legacy", "legacy_2025")
        c, d, p = self.pick("legacy" if legacy else "2025")
        while kind == "typo" and sum(ch.isalpha() for ch in split_kind(c.name)[1]) < 5:
            c, d, p = self.pick("2025")  # too short to tell a typo from another name
        before = dt.date(2019, 1, 1) + dt.timedelta(days=r.randint(0, 2372))
        after = dt.date(2025, 7, 1) + dt.timedelta(days=r.randint(0, 520))
        on = before if kind == "legacy" else after
        expect = (p.code, d.code if d else "", c.code)
        if kind == "legacy_2025":
            new = self.new_by_code[self.successor[c.code]]
            expect = (self.province_of(new).code, "", new.code)
        sep = r.choice((", ", ", ", ",", " , "))
        if kind == "clean_full":
            text = sep.join(self.with_detail([c.name, p.name]))
        elif kind == "abbreviated":
            text = sep.join(self.with_detail([self.abbr(c.name), self.province_abbr(p.name)]))
        elif kind == "no_diacritics":
            names = [c.name, p.name] if r.random() < 0.5 else [self.abbr(c.name), self.province_abbr(p.name)]
            text = self.case(strip_marks(sep.join(self.with_detail(names))))
        elif legacy:
            style = r.choice(("full", "abbr", "plain"))
            if style == "full":
                names = [c.name, d.name if d else "", p.name]
            else:
                names = [self.abbr(c.name), self.abbr(d.name) if d else "", self.province_abbr(p.name)]
            text = sep.join(self.with_detail([x for x in names if x]))
            if style == "plain":
                text = self.case(strip_marks(text))
        elif kind == "swapped":
            names = [p.name, c.name] if r.random() < 0.5 else [self.province_abbr(p.name), self.abbr(c.name)]
            text = sep.join([*names, self.detail()] if r.random() < 0.7 else names)
        elif kind == "typo":
            text = sep.join(self.with_detail([self.typo(c, p), p.name if r.random() < 0.6
                                              else self.province_abbr(p.name)]))
        else:
            text = self.noisy(c, p)
        return text, on, *expect

    def typo(self, c, p) -> str:  # noqa: ANN001
        kind, short = split_kind(c.name)
        letters = [i for i, ch in enumerate(short) if ch.isalpha() and i > 0 and short[i - 1] != " "]
        new = short
        for _ in range(50):
            i = self.r.choice(letters)
            op = self.r.choice(("replace", "drop", "double", "swap"))
            if op == "replace":
                new = short[:i] + self.r.choice("aăâeêioôơuưyđnhtcg") + short[i + 1:]
            elif op == "drop":
                new = short[:i] + short[i + 1:]
            elif op == "double":
                new = short[:i] + short[i] + short[i:]
            elif i + 1 < len(short) and short[i + 1].isalpha():
                new = short[:i] + short[i + 1] + short[i] + short[i + 2:]
            else:
                continue
            key = self.fold(new)
            if key != self.fold(short) and key.replace(" ", "") not in self.keys_in[p.id]:
                break
        prefix = self.abbr(c.name)[: -len(short)] if self.r.random() < 0.5 else kind + " "
        return prefix + new

    def noisy(self, c, p) -> str:  # noqa: ANN001
        r = self.r
        com = c.name if r.random() < 0.6 else self.abbr(c.name)
        prov = p.name if r.random() < 0.6 else self.province_abbr(p.name)
        det = self.detail()
        tricks = r.sample(("after", "note", "phone", "vn", "postcode", "nocomma"), r.randint(2, 4))
        parts = [com, det, prov] if "after" in tricks else [det, com, prov]
        sep = " " if "nocomma" in tricks else ", "
        if "vn" in tricks:
            parts.append(r.choice(("Việt Nam", "Viet Nam", "VN", "Vietnam")))
        if "postcode" in tricks:
            parts[-1] += " " + (f"{r.randint(10, 99)}{r.randint(0, 999):03d}" if r.random() < 0.7
                                else f"{r.randint(10, 99)}0000")
        text = sep.join(parts)
        if "phone" in tricks:
            phone = r.choice((f"0{r.choice((90, 91, 98, 35, 70))}{r.randint(0, 9999999):07d}",
                              f"0905 {r.randint(100, 999)} {r.randint(100, 999)}",
                              f"+84 9{r.randint(10, 99)} {r.randint(100, 999)} {r.randint(100, 999)}",
                              f"0235.{r.randint(1000, 9999)}.{r.randint(100, 999)}"))
            label = r.choice(("SĐT: ", "ĐT ", "", "- "))
            text = f"{text} {label}{phone}" if r.random() < 0.7 else f"{label}{phone}, {text}"
        if "note" in tricks:
            text = f"{text} {r.choice(NOTES)}"
        return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--per-kind", type=int, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "tests/data/addresses/addresses.csv")
    args = ap.parse_args()
    maker = Maker(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("id", "kind", "on", "text", "province", "district", "commune"))
        n = 0
        for kind in KINDS:
            for _ in range(args.per_kind):
                text, on, province, district, commune = maker.make(kind)
                n += 1
                w.writerow((n, kind, on.isoformat(), unicodedata.normalize("NFC", text), province, district,
                            commune))
    print(f"{n} addresses in {args.out}")


if __name__ == "__main__":
    main()
