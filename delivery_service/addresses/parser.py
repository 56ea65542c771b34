"""Free-text Vietnamese addresses to administrative units, offline (no Flask, no database, no network).

An :class:`AddressParser` is built once from a list of units (the ``admin_units`` rows of the
database, or the ``vietnamadminunits`` package's own tables: :func:`units_from_package`) and is then a
pure function of a text and a date: :meth:`AddressParser.parse`.

How it reads a text:

1. **Normalise**: NFC, then one table lowers and strips the diacritics of every letter (đ → d) with
   the same length, so that what is matched maps back to the characters written. Phone numbers,
   postcodes, notes after "ghi chú:", "lưu ý:" and "Việt Nam" are noise: they are not matched and
   not kept in the detail. Notes in brackets ("(gần chợ)") are not matched either, but stay in the
   detail for the courier; kind words whose name was read elsewhere or is missing ("…, huyen son
   tinh", "Phường,") and stray punctuation do not.
2. **Tokenise** on spaces and punctuation; commas, semicolons and new lines end a *segment*.
   "P12", "Q.1", "F5" become a marker and a number.
3. **Find mentions**: every run of whole tokens (never a part of a word: "hn" does not fire inside
   "thanh-nghe", "Đinh Tiên Hoàng" is not "Tiên Hoa") that is the name of a unit, without its kind
   ("cẩm thành" for Phường Cẩm Thành), or the name written without spaces. The token before a mention
   is its *marker*: a kind (tỉnh/T., thành phố/TP., quận/Q., huyện/H., thị xã/TX., phường/P./F.,
   xã/X., thị trấn/TT., đặc khu) or a word of a street or hamlet (thôn, xóm, ấp, tổ, đường, số…).
   A matching kind raises a mention's score, another level's kind lowers it. **Streets**: a name
   right after a street or hamlet word ("đường Trần Phú", "thôn Phú Thọ"; "phố Huế" too, although
   a ward was called Phố Huế: with its kind it is read) or after a house number ("45 Lê Lợi", "Số
   3 ngõ 12 phố Huế", "Số 12, Hùng Vương") is no unit, nor is a commune or district at its second
   word ("12 Hùng Vương" is not Thị trấn Vương); one further in those words is less likely, never
   sure, and stays in the detail.
   Names that are numbers or of one or two letters only count after a kind ("Phường 12", "Q1").
4. **Typos**: a name after a commune marker that matches nothing, or every segment when nothing
   good was found, is compared with the commune names of one edit away (a letter replaced, missing,
   added, or two swapped), through an index of names with one letter deleted.
5. **Combine**: each commune mentioned is a candidate, scored with the mentions of its own district
   and province (hierarchy: a district or province of another branch adds nothing, another province
   named lowers it; the province of the other structure that holds the commune's land counts, as in
   "Phường Hội An, Quảng Nam"; words read both as a district and a province count once); a candidate
   from the structure that ended before the date (the three-level one, before 1 Jul 2025) is
   slightly lowered and answered through its successor. Candidates are ranked; the confidence
   comes from the best score and its lead over the next different commune.
6. **Never sure** (confidence at most 0.6, the candidates offered) when the text contradicts the
   reading: a district written as such (after Q./H./TX., after TP. when the words are not a
   province's, or alone between commas) that is not the commune's (for a 2025 commune: not the
   district of one of the communes it was made of), even with its province right ("xã Hoa Mai,
   H. Đức Thọ": Xã Hòa Hải, one letter away, lies in Hương Khê); or, after the reform, a
   pre-reform commune split between several 2025 communes (471 of them): the parts are the first
   candidates, the package's default first. No data says which hamlet or street went to which
   part, so the detail cannot decide.
7. **The province alone** can be sure when the commune is not (``province_sure``): its name (or a
   former province's that became it) is read well and no other province's comes within 1 point.
   A former district or province read alone after the reform answers the province that received
   most of its communes ("45 Lê Lợi, TP Quảng Ngãi": Tỉnh Quảng Ngãi, no commune).

The units kept, and the detail (house number, street, hamlet), come back with the units as given.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

REFORM_DATE = dt.date(2025, 7, 1)
LEGACY_VALID_FROM = dt.date(2008, 8, 1)
TIMEZONE = ZoneInfo("Asia/Ho_Chi_Minh")
SURE = 0.75  # below this confidence the answer lists the ranked candidates
UNSURE = 0.6  # the most confidence a reading the text itself contradicts may have


class UnitLike(Protocol):
    """What the parser needs of a unit (the database's rows and :class:`UnitRecord` both have it)."""

    @property
    def id(self) -> Any: ...
    @property
    def level(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def parent_id(self) -> Any: ...
    @property
    def valid_from(self) -> dt.date: ...
    @property
    def valid_to(self) -> dt.date | None: ...


@dataclass(frozen=True, slots=True)
class UnitRecord:
    id: Any
    level: str  # "province", "district" or "commune"
    code: str
    name: str
    kind: str
    parent_id: Any
    valid_from: dt.date
    valid_to: dt.date | None


# --- normalisation -------------------------------------------------------------------------------

def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for cp in range(0x41, 0x2000):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        low = base.lower()
        if len(low) == 1 and low.isascii() and low != ch:
            table[cp] = low
    table[ord("đ")] = table[ord("Đ")] = "d"
    return table


_FOLD = _fold_table()


def fold(text: str) -> str:
    """Lower case without diacritics (đ → d), one character for one: ``fold("Đắk Lắk") == "dak lak"``."""
    return unicodedata.normalize("NFC", text).translate(_FOLD)


_TOKEN = re.compile(r"[a-z0-9]+|[,;|\n]")
_GLUED = re.compile(r"^(p|q|f|x|h|kp)(\d{1,2})$")  # P12, Q1, F5 (phường 12, quận 1)
_NOISE = re.compile(
    r"\([^)]*\)?|\[[^\]]*\]?"  # notes in brackets
    r"|\b(?:ghi chu|luu y|note|gc)\b\s*[:\-].*?(?=[;|\n]|$)"  # a note to the end of its line
    r"|(?<![\w/.])(?:\+?84|0)[ .\-]?\d{2,3}(?:[ .\-]?\d){6,7}(?![\w/])"  # phone numbers
    r"|(?<![\w/.\-])\d{5,6}(?![\w/.\-])"  # postcodes (5 digits since 2017, 6 before)
)
_SEPARATORS = re.compile(r"[,;|\n]")
_HAS_NOISE = re.compile(r"[\d(\[:]")
_NOISE_WORDS = frozenset({"vietnam", "vn", "sdt", "dt", "dthoai", "tel", "phone", "hotline"})

# markers: the kind written before a name, by category
_MARK2 = {("thanh", "pho"): "tp", ("thi", "xa"): "tx", ("thi", "tran"): "tt", ("dac", "khu"): "dk",
          ("khu", "pho"): "street", ("to", "dan"): "street", ("so", "nha"): "street",
          ("khu", "vuc"): "street"}
_MARK1 = {"tinh": "tinh", "t": "tinh", "tp": "tp", "thanhpho": "tp", "quan": "quan", "q": "quan",
          "huyen": "huyen", "h": "huyen", "tx": "tx", "thixa": "tx", "phuong": "phuong", "p": "phuong",
          "f": "phuong", "xa": "xa", "x": "xa", "tt": "tt", "thitran": "tt", "dk": "dk", "dackhu": "dk"}
for _w in ("thon", "xom", "ap", "to", "khu", "kp", "duong", "d", "pho", "so", "sn", "ngo", "ngach", "hem",
           "kiet", "ban", "lang", "khom", "tdp", "khoi", "doi", "cum", "toa", "lo", "buon", "nha", "can",
           "tang", "kdc", "kcn", "chung", "cho"):
    _MARK1[_w] = "street"
_CAT_LEVELS = {"tinh": ("province",), "tp": ("province", "district"), "quan": ("district",),
               "huyen": ("district",), "tx": ("district",), "phuong": ("commune",), "xa": ("commune",),
               "tt": ("commune",), "dk": ("commune",)}
_LEVEL_CATS = {lv: frozenset(c for c, levels in _CAT_LEVELS.items() if lv in levels)
               for lv in ("province", "district", "commune")}
_KIND_PREFIX = (("thanh", "pho"), ("thi", "xa"), ("thi", "tran"), ("dac", "khu"), ("tinh",), ("quan",),
                ("huyen",), ("phuong",), ("xa",))
_PREFIX_CAT = {("thanh", "pho"): "tp", ("thi", "xa"): "tx", ("thi", "tran"): "tt", ("dac", "khu"): "dk",
               ("tinh",): "tinh", ("quan",): "quan", ("huyen",): "huyen", ("phuong",): "phuong",
               ("xa",): "xa"}
# province names people write otherwise (whole tokens only: never inside a word)
_ALIASES = {"hcm": "ho chi minh", "tphcm": "ho chi minh", "saigon": "ho chi minh", "hn": "ha noi",
            "brvt": "ba ria vung tau", "tthue": "thua thien hue", "hue": "thua thien hue"}

# words before a house number: a name after the number is the street ("Số 3 phố Huế", "ngõ 12 Trần Phú")
_ROAD = frozenset({"so", "sn", "nha", "duong", "d", "pho", "ngo", "ngach", "hem", "kiet"})
# street words as written: a name that begins with one, without a kind before it, is a street's ("phố
# Huế"), although Phường Phố Huế or Xã Đường Lâm begin with them too (they are then written with their kind)
_ROAD_WRITTEN = frozenset({"phố", "đường", "ngõ", "ngách", "hẻm", "kiệt"})

_BASE = {"province": 2.5, "district": 2.0, "commune": 3.0}
_WEAK = 6.5  # a best reading below this (about a commune with its kind but no province) looks for typos


@dataclass(frozen=True, slots=True)
class _Text:
    original: str
    toks: list[str]
    starts: list[int]
    ends: list[int]
    segs: list[int]
    noise: list[tuple[int, int]]
    notes: list[tuple[int, int]]  # in brackets: not read, but kept in the detail for the courier


def _tokenise(text: str) -> _Text:
    original = unicodedata.normalize("NFC", text)
    folded = original.translate(_FOLD)
    noise: list[tuple[int, int]] = []
    notes: list[tuple[int, int]] = []
    if _HAS_NOISE.search(folded):
        def blank(m: re.Match[str]) -> str:
            (notes if m.group()[0] in "([" else noise).append(m.span())
            return " " * (m.end() - m.start())
        folded = _NOISE.sub(blank, folded)
    toks: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    segs: list[int] = []
    seg = 0
    for m in _TOKEN.finditer(folded):
        t = m.group()
        if t in ",;|\n":
            if toks and segs[-1] == seg:
                seg += 1
            continue
        s, e = m.span()
        if t in _NOISE_WORDS:
            noise.append((s, e))
            continue
        if t == "nam" and toks and toks[-1] == "viet" and segs[-1] == seg:
            noise.append((starts.pop(), e))
            toks.pop(), ends.pop(), segs.pop()
            continue
        g = _GLUED.match(t) if t[-1].isdigit() and not t[0].isdigit() else None
        if g:
            p = g.group(1)
            toks += [p, g.group(2).lstrip("0") or "0"]
            starts += [s, s + len(p)]
            ends += [s + len(p), e]
            segs += [seg, seg]
            continue
        if t[0] == "0" and t.isdigit():
            t = t.lstrip("0") or "0"
        toks.append(t)
        starts.append(s)
        ends.append(e)
        segs.append(seg)
    return _Text(original, toks, starts, ends, segs, noise, notes)


def _one_edit(a: str, b: str) -> bool:
    """At most one edit apart (replace, insert, delete, or swap two neighbours)."""
    la, lb = len(a), len(b)
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        return len(diff) <= 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    if abs(la - lb) != 1:
        return False
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1:]


# --- the index -------------------------------------------------------------------------------------

class _Unit:
    __slots__ = ("rec", "level", "cat", "period", "province", "district", "key", "joined", "accented",
                 "bonus", "uid")

    def __init__(self, rec: UnitLike, level: str, cat: str, period: int, key: str) -> None:
        self.rec = rec
        self.level = level
        self.cat = cat
        self.period = period
        self.key = key
        self.joined = key.replace(" ", "")
        self.accented = ""  # the name's words with their diacritics, lower case, without spaces
        self.province: _Unit | None = None
        self.district: _Unit | None = None
        self.uid = id(self)
        # the base score of a mention of this unit, by the kind written before it
        base = _BASE[level]
        self.bonus: dict[str | None, float] = {None: base, "street": base - 3.0}
        for c, levels in _CAT_LEVELS.items():
            self.bonus[c] = base + (1.5 if c == cat else 0.8 if level in levels else -2.0)


@dataclass(frozen=True, slots=True)
class Match:
    """One reading of a text: units of one structure, and how well the text supports it."""

    province: Any
    district: Any
    commune: Any
    score: float
    legacy: bool  # read in a structure that ended before the date asked about


@dataclass(frozen=True, slots=True)
class ParseResult:
    """The units valid on ``on``; ``written`` when the text names units of an older structure."""

    on: dt.date
    province: Any
    district: Any
    commune: Any
    detail: str
    confidence: float
    sure: bool
    written: Match | None = None  # the pre-reform units as written (a former district, a merged commune)
    successor: Any = None  # the 2025 commune that succeeded the pre-reform commune of the text
    candidates: list[Match] = field(default_factory=list)
    province_sure: bool = False  # the province is certain even if the commune is not


class _Mention:
    __slots__ = ("unit", "start", "i", "j", "score", "cat", "street")

    def __init__(self, unit: _Unit, start: int, i: int, j: int, score: float, cat: str | None,
                 street: bool = False) -> None:
        self.unit, self.start, self.i, self.j, self.score = unit, start, i, j, score
        self.cat = cat  # the kind written before it (a category of _MARK1), or None
        self.street = street  # without a kind, in the words of a street ("12 Lê Hồng Phong")

    def apart(self, other: _Mention) -> bool:
        """Other words than ``other``'s (the kinds before them included)."""
        return self.j <= other.start or self.start >= other.j


# a candidate: score, unit, the mentions of its commune, district and province, and whether the text
# names a district that is not the commune's (the reading is then never sure)
_Raw = tuple[float, _Unit, "_Mention | None", "_Mention | None", "_Mention | None", bool]


class AddressParser:
    """Built once from units (any objects with :class:`UnitLike`'s attributes).

    ``successors`` maps a pre-reform commune code to the code of the 2025 commune it became
    (:func:`delivery_service.units.succession.successors`); ``splits`` gives, for a pre-reform
    commune split between several 2025 communes, all of them (:func:`~delivery_service.units.
    succession.split_successors`): such a commune is never answered with certainty after the
    reform, its parts are the candidates; ``aliases`` gives other names of a unit
    (former names, spelling variants), by (level, code, valid_from), written without spaces
    (:func:`package_aliases`).
    """

    def __init__(self, units: Iterable[UnitLike], successors: Mapping[str, str] | None = None,
                 aliases: Mapping[tuple[str, str, dt.date], Iterable[str]] | None = None,
                 splits: Mapping[str, Sequence[str]] | None = None) -> None:
        recs = list(units)
        self.periods: list[tuple[dt.date, dt.date | None]] = sorted(
            {(u.valid_from, u.valid_to) for u in recs}, key=lambda p: p[0])
        period_of = {p: n for n, p in enumerate(self.periods)}
        by_id: dict[Any, _Unit] = {}
        self._names: dict[str, list[tuple[_Unit, bool, float]]] = {}
        self._prefixes: set[str] = set()
        self._fuzzy: dict[str, list[_Unit]] = {}
        self._by_code: dict[tuple[int, str, str], _Unit] = {}
        for rec in recs:
            level = str(rec.level)
            words = _TOKEN.findall(fold(rec.name))
            cat = _MARK1.get(fold(rec.kind).replace(" ", ""), "")
            for prefix in _KIND_PREFIX:
                if tuple(words[:len(prefix)]) == prefix and len(words) > len(prefix):
                    cat, words = _PREFIX_CAT[prefix], words[len(prefix):]
                    break
            words = [w.lstrip("0") or "0" if w.isdigit() else w for w in words]
            key = " ".join(words)
            unit = _Unit(rec, level, cat, period_of[(rec.valid_from, rec.valid_to)], key)
            written = re.findall(r"\w+", unicodedata.normalize("NFC", rec.name).lower())
            unit.accented = "".join(w.lstrip("0") or "0" if w.isdigit() else w
                                    for w in written[len(written) - len(words):])
            by_id[rec.id] = unit
            self._by_code[(unit.period, level, rec.code)] = unit
            self._add(unit.joined, unit, needs_marker=unit.joined.isdigit() or len(unit.joined) <= 2)
            others = set(aliases.get((level, rec.code, rec.valid_from), ())) if aliases else set()
            if level == "province":
                others |= {alias for alias, target in _ALIASES.items() if target == key}
            for alias in others - {unit.joined}:
                self._add(alias, unit, needs_marker=False, penalty=0.4)
            if level == "commune" and len(unit.joined) >= 4:
                j = unit.joined
                for variant in {j, *(j[:i] + j[i + 1:] for i in range(len(j)))}:
                    self._fuzzy.setdefault(variant, []).append(unit)
        for unit in by_id.values():
            parent = by_id.get(unit.rec.parent_id)
            if parent is not None and parent.level == "district":
                unit.district = parent
                parent = by_id.get(parent.rec.parent_id)
            unit.province = unit if unit.level == "province" else parent
        self._successors = dict(successors or {})
        self._splits = {old: tuple(codes) for old, codes in (splits or {}).items() if len(codes) > 1}
        self._latest = len(self.periods) - 1
        # provinces of two structures that share communes (Quảng Nam and Đà Nẵng): "Phường Hội An,
        # Quảng Nam" names a 2025 ward with its former province, and is still that ward
        self._linked: set[tuple[int, int]] = set()
        # the districts of the pre-reform communes that gave land to each 2025 commune: a district
        # written next to a 2025 commune is either one of them or a contradiction
        self._former: dict[int, set[int]] = {}
        # the latest province that received most of a pre-reform province's or district's communes
        later: dict[int, Counter[int]] = {}
        latest_province: dict[int, _Unit] = {}
        for unit in by_id.values():
            if unit.level == "commune" and unit.period != self._latest and unit.province is not None:
                new = self._by_code.get((self._latest, "commune", self._successors.get(unit.rec.code, "")))
                if new is not None and new.province is not None:
                    latest_province[new.province.uid] = new.province
                    for old in (unit.province, unit.district):
                        if old is not None:
                            later.setdefault(old.uid, Counter())[new.province.uid] += 1
                for code in self._splits.get(unit.rec.code) or (self._successors.get(unit.rec.code),):
                    new = self._by_code.get((self._latest, "commune", code)) if code else None
                    if new is None:
                        continue
                    if new.province is not None:
                        self._linked.add((unit.province.uid, new.province.uid))
                        self._linked.add((new.province.uid, unit.province.uid))
                    if unit.district is not None:
                        self._former.setdefault(new.uid, set()).add(unit.district.uid)
        self._province_after = {old: latest_province[c.most_common(1)[0][0]] for old, c in later.items()}

    def _add(self, key: str, unit: _Unit, needs_marker: bool, penalty: float = 0.0) -> None:
        """Index ``key`` (a name's words without spaces: spans of whole tokens are matched joined)."""
        self._names.setdefault(key, []).append((unit, needs_marker, penalty))
        for k in range(1, len(key) + 1):
            self._prefixes.add(key[:k])

    @classmethod
    def from_package(cls, provinces: Iterable[str] | None = None) -> AddressParser:
        """From the ``vietnamadminunits`` package's tables, both structures."""
        from delivery_service.units.succession import split_successors, successors

        return cls(units_from_package(provinces), successors(), package_aliases(), split_successors())

    # --- parsing -----------------------------------------------------------------------------------

    def _allowed(self, day: dt.date) -> tuple[set[int], set[int]]:
        """Periods valid on ``day`` (current) and those that ended before it (older)."""
        current, older = set(), set()
        for n, (start, end) in enumerate(self.periods):
            if start <= day and (end is None or day <= end):
                current.add(n)
            elif end is not None and end < day:
                older.add(n)
        return current, older

    def parse(self, text: str, on: dt.date | None = None) -> ParseResult:
        day = on or dt.datetime.now(TIMEZONE).date()
        current, older = self._allowed(day)
        allowed = current | older
        t = _tokenise(text)
        toks, segs = t.toks, t.segs
        n = len(toks)
        markers = [self._marker(toks, segs, i) for i in range(n)]
        # tokens further in a segment that began with a kind ("xã Bcắ Thụy Anh"): a commune name
        # there is less likely than a typo of the whole name
        inside = [False] * n
        for i in range(1, n):
            if segs[i - 1] == segs[i] and markers[i][0] is None:
                inside[i] = inside[i - 1] or markers[i - 1][0] not in (None, "street")
        street = self._streets(t, markers)
        best: dict[int, _Mention] = {}
        for i in range(n):
            key = toks[i]
            if key not in self._prefixes:
                continue
            j = i + 1
            while True:
                hits = self._names.get(key)
                if hits:
                    self._mentions(best, hits, allowed, markers[i], i, j, t, inside[i], street[i])
                if j >= n or segs[j] != segs[i]:
                    break
                key += toks[j]
                if key not in self._prefixes:
                    break
                j += 1
        raw = self._candidates(best, current, older, segs)
        if not raw or raw[0][0] < _WEAK or raw[0][1].level != "commune":
            # a typo? names one edit away, after each commune kind and at the start of each segment
            for i in range(n):
                if markers[i][0] in ("phuong", "xa", "tt", "dk"):
                    self._fuzzy_at(best, allowed, markers[i], i, t)
                elif (i == 0 or segs[i - 1] != segs[i]) and toks[i] not in _MARK1 and street[i] != 1 and (
                        i + 1 >= n or (toks[i], toks[i + 1]) not in _MARK2):
                    self._fuzzy_at(best, allowed, markers[i], i, t, whole=True)  # a segment without kind
            raw = self._candidates(best, current, older, segs)
        return self._result(t, day, raw, current, best)

    @staticmethod
    def _streets(t: _Text, markers: list[tuple[str | None, int]]) -> list[int]:
        """Per token, its place in the name of a street or hamlet (0: none): 1 right after a street
        or hamlet word ("đường Trần Phú", "thôn Phú Thọ") or a house number (a number opening its
        part of the line, after a road word or after another number: "45 Lê Lợi", "Số 3 phố Huế",
        "87/25 Hùng Vương"; or the first word after a part that is only a house number: "Số 12,
        Hùng Vương"), then 2, 3… up to the next kind or the end of the part. A street word written
        with its diacritics ("phố", "đường") where no kind precedes it is 1 too: "phố Huế" is a street
        even if a ward was called so."""
        toks, segs = t.toks, t.segs
        n = len(toks)
        out = [0] * n
        number = [False] * n
        start = 0
        lone = False  # the part before this one was only a house number
        for i in range(n):
            if i and segs[i - 1] != segs[i]:
                lone = number[i - 1] and all(number[k] or toks[k] in _ROAD for k in range(start, i))
                start = i
            if toks[i][0].isdigit():
                # "khu phố 5", "tổ dân phố 3": hamlets, not roads
                road = i > start and toks[i - 1] in _ROAD and not (
                    toks[i - 1] == "pho" and i - 1 > start and toks[i - 2] in ("khu", "dan"))
                number[i] = i == start or road or number[i - 1]
            elif markers[i][0] == "street" or (i > start and number[i - 1]) or (i == start and lone) or (
                    markers[i][0] is None and toks[i] in _ROAD
                    and t.original[t.starts[i]:t.ends[i]].lower() in _ROAD_WRITTEN):
                out[i] = 1
            elif i > start and out[i - 1] and markers[i][0] is None:
                out[i] = out[i - 1] + 1
        return out

    @staticmethod
    def _marker(toks: list[str], segs: list[int], i: int) -> tuple[str | None, int]:
        """The kind written before token ``i`` (a category) and where it starts."""
        if i >= 2 and segs[i - 2] == segs[i]:
            cat = _MARK2.get((toks[i - 2], toks[i - 1]))
            if cat:
                return cat, i - 2
        if i >= 1 and segs[i - 1] == segs[i]:
            cat = _MARK1.get(toks[i - 1])
            if cat:
                return cat, i - 1
        return None, i

    @staticmethod
    def _mentions(best: dict[int, _Mention], hits: list[tuple[_Unit, bool, float]], allowed: set[int],
                  marker: tuple[str | None, int], i: int, j: int, t: _Text, inside: bool,
                  street: int = 0) -> None:
        """Score the units named by tokens ``i:j`` (the same as :meth:`_mention`, once per span).

        ``street``: the place of token ``i`` in a street's or hamlet's name (:meth:`_streets`): its
        first word is no unit ("45 Lê Lợi"), nor is a commune or district at the second ("12 Hùng
        Vương" is not Thị trấn Vương); further, one is less likely, and left in the detail.
        """
        if street == 1:
            return
        cat, start = marker
        segs = t.segs
        n = len(segs)
        span = 0.3 * j / n
        if j == n or segs[j] != segs[i]:
            span += 0.6 if start == 0 or segs[start - 1] != segs[i] else 0.2
        acc = None
        if len(hits) > 1:  # "Văn Lăng" and "Văn Lang": the diacritics written decide
            acc = "".join(t.original[t.starts[k]:t.ends[k]].lower() for k in range(i, j))
        for unit, needs_marker, penalty in hits:
            if unit.period not in allowed:
                continue
            if needs_marker and cat not in _LEVEL_CATS[unit.level]:
                continue  # "12" or "hn"-like names count only after a kind of their level
            bonus = unit.bonus[cat]
            score = bonus + span - penalty
            if acc is not None and acc != unit.accented:
                score -= 0.3
            if inside and unit.level == "commune":
                score -= 0.8
            in_street = bool(street) and unit.level != "province"
            if in_street:
                if street == 2:
                    continue
                score -= 1.0
            if score <= 0:
                continue
            old = best.get(unit.uid)
            if old is None or old.score < score:
                best[unit.uid] = _Mention(unit, start, i, j, score, cat, in_street)

    @staticmethod
    def _mention(best: dict[int, _Mention], unit: _Unit, needs_marker: bool, marker: tuple[str | None, int],
                 i: int, j: int, t: _Text, penalty: float) -> None:
        cat, start = marker
        level = unit.level
        if cat is None:
            if needs_marker:
                return
            bonus = 0.0
        elif cat == "street":
            if needs_marker:
                return
            bonus = -3.0
        elif cat == unit.cat:
            bonus = 1.5
        elif level in _CAT_LEVELS[cat]:
            bonus = 0.8
        else:
            if needs_marker:
                return
            bonus = -2.0
        score = _BASE[level] + bonus - penalty
        segs = t.segs
        n = len(segs)
        at_end = j == n or segs[j] != segs[i]
        if at_end:
            score += 0.2
            if start == 0 or segs[start - 1] != segs[i]:
                score += 0.4
        score += 0.3 * j / n
        if score <= 0:
            return
        old = best.get(unit.uid)
        if old is None or old.score < score:
            best[unit.uid] = _Mention(unit, start, i, j, score, cat)

    def _fuzzy_at(self, best: dict[int, _Mention], allowed: set[int], marker: tuple[str | None, int],
                  i: int, t: _Text, whole: bool = False) -> None:
        """Communes one edit away from tokens ``i:j`` (``whole``: only up to the end of the segment)."""
        toks, segs = t.toks, t.segs
        n = len(toks)
        q = ""
        for j in range(i, min(i + 5, n)):
            if segs[j] != segs[i]:
                break
            q += toks[j]
            if len(q) < 4 or (whole and j + 1 < n and segs[j + 1] == segs[i]):
                continue
            seen: set[int] = set()
            for variant in {q, *(q[:k] + q[k + 1:] for k in range(len(q)))}:
                for unit in self._fuzzy.get(variant, ()):
                    if unit.period in allowed and id(unit) not in seen:
                        seen.add(id(unit))
                        if _one_edit(q, unit.joined):
                            self._mention(best, unit, False, marker, i, j + 1, t, 1.2)

    @staticmethod
    def _named_districts(best: dict[int, _Mention], provinces: list[_Mention],
                         segs: list[int]) -> list[_Mention]:
        """The districts the text names as such: after a district's kind (Q., H., TX.; TP. when the
        words are not a province's too), or alone in their part of the line (not a province's name)."""
        n = len(segs)
        out = []
        for x in best.values():
            if x.unit.level != "district" or x.cat in ("street", "tinh", "phuong", "xa", "tt", "dk"):
                continue
            if x.cat in ("quan", "huyen", "tx"):
                out.append(x)
                continue
            alone = (x.i == 0 or segs[x.i - 1] != segs[x.i]) and (x.j == n or segs[x.j] != segs[x.i])
            if x.cat is None and not alone:
                continue  # a district's name inside other words ("16 Hai Bà Trưng"): perhaps a street
            if all(x.apart(p) for p in provinces):
                out.append(x)
        return out

    def _contradicted(self, u: _Unit, m: _Mention, dm: _Mention | None, named: list[_Mention]) -> bool:
        """Whether the text names a district that commune ``u`` is not in (nor, for a 2025 commune,
        any of its predecessors was): the words of a district named more than once (Huyện Châu Thành
        of several provinces) contradict only if none of those districts is the commune's."""
        if u.district is not None:
            mine = {u.district.uid}
        else:
            mine = self._former.get(u.uid)
            if mine is None:
                return False
        fits, spans = set(), set()
        for x in named:
            if not x.apart(m) or (dm is not None and not x.apart(dm)):
                continue
            if u.district is None and x.unit.period == u.period:
                continue
            spans.add((x.i, x.j))
            if x.unit.uid in mine:
                fits.add((x.i, x.j))
        return bool(spans - fits)

    def _candidates(self, best: dict[int, _Mention], current: set[int], older: set[int],
                    segs: list[int]) -> list[_Raw]:
        cands: list[_Raw] = []
        both = bool(older)
        # a district named in the text tells its province, even if the commune is in another district
        by_province: dict[int, _Mention] = {}
        provinces = [m for m in best.values() if m.unit.level == "province"]
        wider = [m for m in best.values() if m.unit.level != "commune" and m.j - m.i > 1]
        named = self._named_districts(best, provinces, segs)
        for m in best.values():
            if m.unit.level == "district" and m.unit.province is not None:
                k = m.unit.province.uid
                if k not in by_province or by_province[k].score < m.score:
                    by_province[k] = m
        for m in best.values():
            u = m.unit
            if u.level != "commune":
                continue
            s = m.score
            d, p = u.district, u.province
            dm = best.get(d.uid) if d is not None else None
            if dm is not None and (dm.j <= m.start or dm.start >= m.j):
                s += dm.score
            else:
                dm = None
                if d is not None and both:
                    s -= 1.0
                other = by_province.get(p.uid)
                if other is not None and (other.j <= m.start or other.start >= m.j):
                    s += 0.6 * other.score
                    dm = other  # not the commune's district, but said: not part of the detail
            pm = best.get(p.uid) if p is not None else None
            if pm is not None and (pm.j <= m.start or pm.start >= m.j):
                s += pm.score
                if pm.start < m.start:
                    s -= 0.2
                if dm is not None and dm.start < pm.j and pm.start < dm.j:
                    s -= min(dm.score, pm.score)  # "Quảng Ngãi" read as district and province: once
            else:
                pm = None
                apart = [x for x in provinces if x.j <= m.start or x.start >= m.j]
                linked = [x for x in apart if (x.unit.uid, p.uid) in self._linked]
                if linked:  # the province of the other structure that holds this commune's land
                    pm = max(linked, key=lambda x: x.score)
                    s += 0.7 * pm.score
                else:  # another province is named: the commune is probably a street of that province
                    s -= 0.5 * max((x.score for x in apart), default=0.0)
            if any(x.i <= m.i and m.j <= x.j and x.j - x.i > m.j - m.i for x in wider):
                s -= 2.0  # "Chí Minh" inside "Hồ Chí Minh"
            elif m.start == m.i and any(x.i <= m.i and m.j <= x.j for x in provinces):
                s -= 2.0  # "Hưng Yên" without "xã" before it is the province
            if u.period not in current:
                s -= 0.6
            own = dm if dm is not None and dm.unit is d else None
            contradicted = bool(named) and self._contradicted(u, m, own, named)
            if contradicted:
                s -= 1.5  # "xã Hoa Mai, H. Đức Thọ": a commune of Hương Khê one letter away is a guess
            cands.append((s, u, m, dm, pm, contradicted))
        for m in best.values():  # a district or a province alone: no commune found
            u = m.unit
            if u.level == "district":
                pm = best.get(u.province.uid)
                if pm is not None and pm.start < m.j and m.start < pm.j:
                    pm = None  # the same words: the province counts once, below
                s = m.score - 2.0 + (pm.score if pm is not None else 0.0)
                cands.append((s - (0.6 if u.period not in current else 0.0), u, None, m, pm, False))
            elif u.level == "province":
                cands.append((m.score - 3.0 - (0.6 if u.period not in current else 0.0), u, None, None, m,
                              False))
        cands.sort(key=lambda c: -c[0])
        return cands

    @staticmethod
    def _match(c: _Raw, current: set[int]) -> Match:
        s, u = c[0], c[1]
        commune = u.rec if u.level == "commune" else None
        if commune is not None:
            district = u.district.rec if u.district is not None else None
        else:
            district = u.rec if u.level == "district" else None
        province = u.province.rec if u.province is not None else None
        return Match(province, district, commune, round(s, 2), u.period not in current)

    def _resolved(self, c: _Raw, current: set[int]) -> int:
        """What a candidate answers on the date: a pre-reform commune counts as its successor."""
        u = c[1]
        if u.period not in current and u.level == "commune":
            code = self._successors.get(u.rec.code)
            new = self._by_code.get((self._latest, "commune", code)) if code else None
            if new is not None:
                return id(new)
        return id(u)

    def _successor(self, commune: Any) -> tuple[Any, Any]:
        """The latest structure's commune (and province) that a pre-reform commune became."""
        code = self._successors.get(commune.code)
        unit = self._by_code.get((self._latest, "commune", code)) if code else None
        if unit is None:
            return None, None
        return unit.rec, unit.province.rec if unit.province is not None else None

    def _parts(self, commune: Any, score: float) -> list[Match]:
        """The 2025 communes a pre-reform commune was split between (the default first), as readings."""
        out = []
        for code in self._splits.get(commune.code, ()):
            unit = self._by_code.get((self._latest, "commune", code))
            if unit is not None:
                province = unit.province.rec if unit.province is not None else None
                out.append(Match(province, None, unit.rec, round(score, 2), False))
        return out

    def _province_on(self, u: _Unit, current: set[int]) -> _Unit | None:
        """The province, valid on the date, that holds what ``u`` names (for a pre-reform unit read
        after the reform: its successor's province, or the one that received most of its communes)."""
        if u.period in current:
            return u.province
        if u.level == "commune":
            code = self._successors.get(u.rec.code)
            new = self._by_code.get((self._latest, "commune", code)) if code else None
            return new.province if new is not None else None
        return self._province_after.get(u.uid)

    def _province_sure(self, province: _Unit | None, best: dict[int, _Mention], current: set[int]) -> bool:
        """Whether the text names ``province`` clearly (its name, or a former province's that became
        it, read well) and no other province comes close."""
        if province is None:
            return False
        mine = others = 0.0
        for x in best.values():
            if x.unit.level == "province":
                if self._province_on(x.unit, current) is province:
                    mine = max(mine, x.score)
                else:
                    others = max(others, x.score)
        return mine >= 2.5 and mine - others >= 1.0

    def _result(self, t: _Text, day: dt.date, raw: list[_Raw], current: set[int],
                best: dict[int, _Mention]) -> ParseResult:
        if not raw:
            return ParseResult(day, None, None, None, _detail(t, []), 0.0, False)
        top = self._match(raw[0], current)
        key = self._resolved(raw[0], current)
        second = next((c for c in raw[1:] if self._resolved(c, current) != key), None)
        margin = raw[0][0] - (second[0] if second else 0.0)
        confidence = min(1.0, max(0.0, raw[0][0]) / 6.5) * min(1.0, 0.4 + margin / 2.5)
        if top.commune is None:
            confidence = min(confidence, 0.5)
        _, u, m, dm, pm, contradicted = raw[0]
        # a pre-reform commune split in 2025: which part the address is in, the text cannot tell
        parts = self._parts(top.commune, raw[0][0]) if top.legacy and top.commune is not None else []
        if contradicted or parts or (m is not None and m.street):
            confidence = min(confidence, UNSURE)
        sure = confidence >= SURE
        # a name read in a street's words stays in the detail: it may well be the street's
        detail = _detail(t, [(x.start, x.j) for x in (m, dm, pm) if x is not None and not x.street])
        ranked: list[Match] = parts[:5]
        if not sure:
            seen: set[int] = {id(u)} if parts else set()
            for c in raw:
                k = id(c[1])
                if len(ranked) == 5:
                    break
                if k not in seen:
                    seen.add(k)
                    ranked.append(self._match(c, current))
        written = successor = None
        province, district, commune = top.province, top.district, top.commune
        if u.period != self._latest and top.commune is not None:
            successor, succ_province = self._successor(top.commune)
            if top.legacy:  # the date is after the structure of the text ended
                written = top
                province, district, commune = succ_province, None, successor
        elif top.legacy:  # a former district or province alone: the province that holds it now
            written = top
            after = self._province_on(u, current)
            province, district, commune = after.rec if after is not None else None, None, None
        province_sure = sure or self._province_sure(self._province_on(u, current), best, current)
        return ParseResult(day, province, district, commune, detail, round(confidence, 2), sure,
                           written, successor, ranked, province_sure and province is not None)

    def parse_many(self, texts: Iterable[str], on: dt.date | None = None) -> list[ParseResult]:
        return [self.parse(text, on) for text in texts]


_KIND_WORDS = frozenset(c for c, cat in _MARK1.items() if cat != "street")
_KIND_PAIRS = frozenset(pair for pair, cat in _MARK2.items() if cat != "street")
_TRIM = " \t.,;:!?-–—_/\\|*~#'\"…"
_SEP_IN_NOTE = str.maketrans(",;|\n", "\ue000\ue001\ue002\ue003")
_SEP_BACK = str.maketrans("\ue000\ue001\ue002\ue003", ",;|\n")


def _detail(t: _Text, spans: list[tuple[int, int]]) -> str:
    """What is left of the text: the house number, street, hamlet, and notes in brackets (the units
    read, noise, kind words whose name is gone and stray punctuation removed)."""
    toks, segs = t.toks, t.segs
    n = len(toks)
    gone = [False] * n
    for i, j in spans:
        for k in range(i, j):
            gone[k] = True
    cut = [*t.noise, *((t.starts[i], t.ends[j - 1]) for i, j in spans)]
    # a kind word with nothing after it in its part, or before what was cut: "huyen son | tinh"
    for k in range(n - 1, -1, -1):
        if gone[k]:
            continue
        width = 2 if k + 1 < n and segs[k + 1] == segs[k] and (toks[k], toks[k + 1]) in _KIND_PAIRS else 1
        if width == 1 and toks[k] not in _KIND_WORDS:
            continue
        if width == 1 and len(toks[k]) == 1 and t.original[t.ends[k]:t.ends[k] + 1] != ".":
            continue  # a letter alone ("Lô A") is no kind without its dot ("P.")
        after = k + width
        if after >= n or segs[after] != segs[k] or gone[after]:
            for x in range(k, after):
                gone[x] = True
            cut.append((t.starts[k], t.ends[after - 1]))
    text = t.original
    if t.notes:  # a note's commas do not end a part
        for a, b in t.notes:
            text = text[:a] + text[a:b].translate(_SEP_IN_NOTE) + text[b:]
    pieces, at = [], 0
    for s, e in sorted(cut):
        if s > at:
            pieces.append(text[at:s])
        at = max(at, e)
    pieces.append(text[at:])
    out: list[str] = []
    for part in _SEPARATORS.split(",".join(pieces)):
        part = " ".join(part.split()).strip(_TRIM).translate(_SEP_BACK)
        if not any(c.isalnum() for c in part):
            continue
        if part[0] in "([" and out:
            out[-1] += " " + part  # a note goes with what it follows
        else:
            out.append(part)
    return ", ".join(out)


def units_from_package(provinces: Iterable[str] | None = None) -> list[UnitRecord]:
    """Both structures of the ``vietnamadminunits`` package as :class:`UnitRecord` rows.

    Ids are ``"<structure>:<level>:<code>"``; the three-level structure is valid from 1 Aug 2008 to
    30 Jun 2025, the 2025 one from 1 Jul 2025 (the dates the database uses).
    """
    from vietnamadminunits.database import get_data

    wanted = set(provinces) if provinces else None
    out: dict[str, UnitRecord] = {}
    legacy_to = REFORM_DATE - dt.timedelta(days=1)
    for source, table, start, end in (("legacy", "admin_units_legacy", LEGACY_VALID_FROM, legacy_to),
                                      ("2025", "admin_units", REFORM_DATE, None)):
        legacy = source == "legacy"
        fields = ["province", "provinceCode", "ward", "wardCode", "wardType"]
        if legacy:
            fields += ["district", "districtCode", "districtType"]
        for r in get_data(fields=fields, table=table):
            pcode = r["provinceCode"]
            if wanted and pcode not in wanted:
                continue
            pid = f"{source}:province:{pcode}"
            if pid not in out:
                kind = "thành phố" if r["province"].startswith("Thành phố") else "tỉnh"
                out[pid] = UnitRecord(pid, "province", pcode, r["province"], kind, None, start, end)
            parent = pid
            if legacy and r["districtCode"]:
                did = f"{source}:district:{r['districtCode']}"
                if did not in out:
                    out[did] = UnitRecord(did, "district", r["districtCode"], r["district"],
                                          r["districtType"].lower(), pid, start, end)
                parent = did
            if r["wardCode"]:
                cid = f"{source}:commune:{r['wardCode']}"
                if cid not in out:
                    out[cid] = UnitRecord(cid, "commune", r["wardCode"], r["ward"], r["wardType"].lower(),
                                          parent, start, end)
    return list(out.values())


_KIND_KEYS = ("thanhpho", "thixa", "thitran", "dackhu", "tinh", "quan", "huyen", "phuong", "xa")


def package_aliases() -> dict[tuple[str, str, dt.date], list[str]]:
    """Other names of units from the ``vietnamadminunits`` package: former names of merged communes
    ("Nghĩa Phú" for Xã An Phú of Quảng Ngãi), spelling variants ("phucsa" for Phúc Xá), "hn".

    Keys as :class:`AddressParser` takes them: (level, code, valid_from); names without spaces or
    kind ("xanghiaphu" is left out when "nghiaphu" is there).
    """
    import json

    from vietnamadminunits.database import get_data

    out: dict[tuple[str, str, dt.date], set[str]] = {}
    for table, start, levels in (("admin_units_legacy", LEGACY_VALID_FROM, ("province", "district", "ward")),
                                 ("admin_units", REFORM_DATE, ("province", "ward"))):
        fields = [f"{lv}Code" for lv in levels] + [f"{lv}Keywords" for lv in levels]
        for r in get_data(fields=fields, table=table):
            for lv in levels:
                code, words = r[f"{lv}Code"], r[f"{lv}Keywords"]
                if not code or not words:
                    continue
                keys = set(json.loads(words))
                plain = {k for k in keys
                         if not any(k.startswith(p) and k[len(p):] in keys for p in _KIND_KEYS)}
                level = "commune" if lv == "ward" else lv
                out.setdefault((level, code, start), set()).update(plain)
    return {k: sorted(v) for k, v in out.items()}
