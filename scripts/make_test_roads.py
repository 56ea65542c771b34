"""Write the road test data: a small grid town cut by a river that ONE bridge crosses, with a one-way
street, as OpenStreetMap XML (read by people) and .osm.pbf (read by the routing engine).

    .venv/bin/python scripts/make_test_roads.py                    # tests/data/roads/town.osm(.pbf)
    .venv/bin/python scripts/make_test_roads.py --cols 60 --rows 60 --out /tmp/big   # a bigger town

The town (columns 0..cols-1 west to east, rows 0..rows-1 south to north, 0.001° of longitude and
0.0009° of latitude apart: about 107 m × 100 m near 15° N, in Quảng Ngãi):

- every row is a street running east-west, every column a street running north-south, but the
  column streets stop at the river, which flows east-west between the southern and the northern half
  (1.5 blocks wide);
- the only crossing is the bridge at the western end (column 0), so two points facing each other
  across the river at the eastern end are about 150 m apart in a straight line and two kilometres by
  road;
- the northernmost street is one-way, eastbound.

Node ids: 1_000_000 + row * 1000 + column; the river's nodes start at 9_000_000. Stable output: the
same arguments give the same bytes (no timestamps).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "roads"

LAT0, LON0 = 15.1200, 108.8000  # the south-western corner
DLAT, DLON = 0.0009, 0.0010  # one block
RIVER_BLOCKS = 1.5  # the river's width between the two halves, in blocks


def node_id(row: int, col: int) -> int:
    return 1_000_000 + row * 1000 + col


def point(row: float, col: float, rows: int) -> tuple[float, float]:
    """(lat, lon) of a place in grid units (fractions allowed): north of the river rows are shifted."""
    south = rows // 2
    lat = LAT0 + row * DLAT + (RIVER_BLOCKS - 1) * DLAT * (row >= south)
    return round(lat, 7), round(LON0 + col * DLON, 7)


def river_lat(rows: int) -> float:
    south = rows // 2
    return round((point(south - 1, 0, rows)[0] + point(south, 0, rows)[0]) / 2, 7)


def town_xml(cols: int = 10, rows: int = 8) -> str:
    """The town as OSM XML (version 0.6)."""
    if cols < 3 or rows < 4 or rows % 2:
        raise ValueError("at least 3 columns and 4 rows, an even number of rows")
    south = rows // 2
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<osm version="0.6" generator="scripts/make_test_roads.py">']
    top = point(rows - 1, cols - 1, rows)
    out.append(f'  <bounds minlat="{LAT0}" minlon="{round(LON0 - DLON, 7)}" maxlat="{top[0]}" '
               f'maxlon="{round(top[1] + DLON, 7)}"/>')
    for row in range(rows):
        for col in range(cols):
            lat, lon = point(row, col, rows)
            out.append(f'  <node id="{node_id(row, col)}" version="1" lat="{lat}" lon="{lon}"/>')
    river = [9_000_000 + k for k in range(cols + 2)]
    for k, ident in enumerate(river):
        lon = round(LON0 + (k - 1) * DLON, 7)
        out.append(f'  <node id="{ident}" version="1" lat="{river_lat(rows)}" lon="{lon}"/>')

    ways: list[tuple[list[int], dict[str, str]]] = []
    for row in range(rows):
        tags = {"highway": "residential", "name": f"Đường số {row + 1}"}
        if row == rows - 1:
            tags = {"highway": "residential", "name": "Phố Một Chiều", "oneway": "yes"}  # eastbound
        ways.append(([node_id(row, col) for col in range(cols)], tags))
    for col in range(cols):
        name = {"highway": "residential", "name": f"Hẻm {col + 1}"}
        ways.append(([node_id(row, col) for row in range(south)], dict(name)))  # south of the river
        ways.append(([node_id(row, col) for row in range(south, rows)], dict(name)))  # north of it
    ways.append(([node_id(south - 1, 0), node_id(south, 0)],
                 {"highway": "residential", "name": "Cầu Sông Trà", "bridge": "yes", "layer": "1"}))
    ways.append((river, {"waterway": "river", "name": "Sông Trà"}))
    for k, (nodes, tags) in enumerate(ways, start=1):
        out.append(f'  <way id="{k}" version="1">')
        out.extend(f'    <nd ref="{ref}"/>' for ref in nodes)
        out.extend(f'    <tag k="{key}" v={quoteattr(value)}/>' for key, value in sorted(tags.items()))
        out.append("  </way>")
    out.append("</osm>")
    return "\n".join(out) + "\n"


def write(out_dir: Path, cols: int = 10, rows: int = 8, name: str = "town") -> tuple[Path, Path]:
    """Write NAME.osm and NAME.osm.pbf into ``out_dir``; returns their paths."""
    import osmium  # pyosmium: writes the PBF the engine reads

    out_dir.mkdir(parents=True, exist_ok=True)
    xml = out_dir / f"{name}.osm"
    pbf = out_dir / f"{name}.osm.pbf"
    xml.write_text(town_xml(cols, rows), encoding="utf-8")
    pbf.unlink(missing_ok=True)
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    return xml, pbf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cols", type=int, default=10)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--name", default="town")
    args = parser.parse_args()
    for path in write(args.out, args.cols, args.rows, args.name):
        print(f"{path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
