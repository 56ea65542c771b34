"""Benchmark: address parsing, delivery_service.addresses.parser vs vietnamadminunits' own parser.

On the labelled set tests/data/addresses/addresses.csv (made by scripts/bench/make_addresses.py):
top-1 accuracy per variation kind (the commune and province codes expected on the row's date; for a
legacy row also its district) and addresses per second on one core, both parsers in the same run.

vietnamadminunits is run offline: ``parse_address`` only reads its bundled JSON (its ArcGIS
geocoder is used by ``convert_address`` alone, which is not called). It is given the structure of
each row (``LEGACY`` for legacy rows, ``FROM_2025`` otherwise), which our parser has to work out from
the text and the date; for ``legacy_2025`` rows its legacy answer goes through the same
successor table as ours (delivery_service.units.succession).

    .venv/bin/python scripts/bench/addresses.py                 # prints the table
    .venv/bin/python scripts/bench/addresses.py --write-docs    # and puts it in docs/benchmarks.md
    .venv/bin/python scripts/bench/addresses.py --errors 20     # and shows 20 of our misses
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "tests/data/addresses/addresses.csv"
DOCS = ROOT / "docs/benchmarks.md"
HEADING = "## Address parsing: `scripts/bench/addresses.py`"
ROUNDS = 3  # each parser parses the whole set this many times; the fastest round counts
CLEAN = ("clean_full", "abbreviated", "no_diacritics", "legacy", "legacy_2025")


def load(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ours(rows: list[dict[str, str]]) -> tuple[list[tuple[str, str, str]], float, float]:
    from delivery_service.addresses.parser import AddressParser

    t0 = time.perf_counter()
    parser = AddressParser.from_package()
    build = time.perf_counter() - t0
    days = [dt.date.fromisoformat(r["on"]) for r in rows]
    elapsed = []
    for _ in range(ROUNDS):
        out = []
        t0 = time.process_time()
        for r, day in zip(rows, days, strict=True):
            res = parser.parse(r["text"], day)
            out.append((res.province.code if res.province else "", res.district.code if res.district else "",
                        res.commune.code if res.commune else ""))
        elapsed.append(time.process_time() - t0)
    return out, min(elapsed), build


def theirs(rows: list[dict[str, str]]) -> tuple[list[tuple[str, str, str]], float, float]:
    t0 = time.perf_counter()
    from vietnamadminunits import parse_address
    from vietnamadminunits.database import get_data

    from delivery_service.units.succession import successors

    succ = successors()
    province_of = {r["wardCode"]: r["provinceCode"]
                   for r in get_data(fields=["wardCode", "provinceCode"], table="admin_units")}
    build = time.perf_counter() - t0
    elapsed = []
    for _ in range(ROUNDS):
        out = []
        t0 = time.process_time()
        for r in rows:
            legacy = r["kind"] in ("legacy", "legacy_2025")
            try:
                u = parse_address(r["text"], mode="LEGACY" if legacy else "FROM_2025")
                got = (u.province_code or "", u.district_code or "", u.ward_code or "")
            except Exception:  # noqa: BLE001 - a crash is a miss
                got = ("", "", "")
            if r["kind"] == "legacy_2025":
                new = succ.get(got[2], "")
                got = (province_of.get(new, ""), "", new)
            out.append(got)
        elapsed.append(time.process_time() - t0)
    return out, min(elapsed), build


def right(row: dict[str, str], got: tuple[str, str, str]) -> bool:
    return got[2] == row["commune"] and got[0] == row["province"] and (
        not row["district"] or got[1] == row["district"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--errors", type=int, default=0, help="show this many of our misses")
    args = ap.parse_args()
    rows = load(args.data)
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    ours_got, ours_time, ours_build = ours(rows)
    their_got, their_time, their_build = theirs(rows)
    lines = ["| kind | addresses | ours: top-1 | vietnamadminunits: top-1 |", "|---|---|---|---|"]
    for kind in kinds:
        idx = [i for i, r in enumerate(rows) if r["kind"] == kind]
        a = sum(right(rows[i], ours_got[i]) for i in idx) / len(idx)
        b = sum(right(rows[i], their_got[i]) for i in idx) / len(idx)
        label = kind + (" (clean)" if kind in CLEAN else " (noisy)")
        lines.append(f"| {label} | {len(idx)} | {a:.1%} | {b:.1%} |")
    a = sum(right(r, g) for r, g in zip(rows, ours_got, strict=True)) / len(rows)
    b = sum(right(r, g) for r, g in zip(rows, their_got, strict=True)) / len(rows)
    lines.append(f"| **all** | {len(rows)} | **{a:.1%}** | **{b:.1%}** |")
    lines.append(f"| addresses per CPU second (one core, best of {ROUNDS}) | "
                 f"| **{len(rows) / ours_time:,.0f}** | "
                 f"{len(rows) / their_time:,.0f} |")
    lines.append(f"| set-up (ours: the index of both structures; the package's data, loaded once, counts "
                 f"in ours) | | {ours_build:.2f} s | {their_build:.2f} s |")
    table = "\n".join(lines)
    print(table)
    if args.errors:
        shown = 0
        for r, g in zip(rows, ours_got, strict=True):
            if not right(r, g) and shown < args.errors:
                shown += 1
                print(f"{r['kind']:>13} {r['on']} {r['text']!r}: want {r['province']}/{r['district']}/"
                      f"{r['commune']}, got {'/'.join(g)}")
    if args.write_docs:
        write_docs(table, len(rows))


def write_docs(table: str, n: int) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "unknown"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"""{HEADING}

Parses every address of `tests/data/addresses/addresses.csv` ({n} addresses made from the unit data by
`scripts/bench/make_addresses.py`, seed 17; see the README next to it) with
`delivery_service.addresses.parser` and with `vietnamadminunits.parse_address` (offline: its geocoder
is not used), in one process, one address at a time, three times each: the fastest round's CPU time (of this
process: the machine is shared) gives the rate. Top-1 counts when the commune and the province
valid on the row's date (and the district for a legacy row) are the expected ones. vietnamadminunits
is told the structure of each row (`LEGACY` or `FROM_2025`), ours reads it from the text and the date;
for `legacy_2025` (a pre-reform address dated after 1 Jul 2025) its answer goes through the same
successor table. Targets: ≥ 99.5 % on every clean kind, ≥ 95 % on noisy ones, ≥ 5,000 addresses/s.

Command (about 30 s): `.venv/bin/python scripts/bench/addresses.py --write-docs`

### {now}, commit {commit} with uncommitted changes

{table}
"""
    text = DOCS.read_text(encoding="utf-8")  # read right before writing: other sections change too
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("\n" + text[nxt + 1:] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text, encoding="utf-8")
    print(f"written to {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
