"""Benchmark: shipping labels per second, labels.render_labels vs a naive plain-reportlab label.

Cases: 1 label in a fresh process (time to the first bytes, imports and fonts included), 1 label
in a warm process, 100 and 1,000 labels in one PDF in one process, 1,000 labels with 2 worker
processes (each renders half), and the same for ZPL. Every case runs in a process of its own and is
warmed with a label of another batch, so no case finds the timed labels' texts cached; the 1,000-label
cases alternate between the renderers for ``--rounds`` rounds (median). Peak memory is ru_maxrss of
the process that rendered. Every output is verified: as many pages (PDF) or ^XA…^XZ labels (ZPL) as
labels asked for, and the first, middle and last label's Code 128 and QR decoded by zxing-cpp from
poppler's (PDF) or zplkit's (ZPL) rendering.
The baseline is the label of docs/BASELINES.md: reportlab's QrCodeWidget + code128 + ~12 lines of
DejaVu text + the route in large type, drawn per label with nothing shared.

    python scripts/bench/labels.py            # prints a markdown table
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Run as a script, Python puts scripts/bench/ first on the path, where this file would shadow the
# ``labels`` package: take it out, and put the project's root first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))


def run_line() -> str:
    """When and on what this ran: the UTC time, the commit (and whether the tree had uncommitted
    changes), the load average. Printed above the table, and copied with it into docs/benchmarks.md."""
    import os
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = " with uncommitted changes" if git("diff-index", "--quiet", "HEAD", "--").returncode else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}{dirty}, "
            f"{os.cpu_count()} CPUs, load average {load}.")


def sample(i: int):  # noqa: ANN201 - imported lazily so a fresh process measures the imports
    from labels import LabelData, Party, Service, s10

    item_id = s10.make("RH", i)
    return LabelData(
        item_id=item_id,
        tracking_url=f"https://tracuu.quangnam.gov.vn/t/{item_id}",
        service=Service.RESULT_TO_CITIZEN,
        sender=Party("Trung tâm Phục vụ hành chính công tỉnh Quảng Nam", ("Số 6 Trần Hưng Đạo", "TP Tam Kỳ")),
        recipient=Party(
            f"Nguyễn Thị Hoà {i}",
            ("Thôn Phú Quý", "xã Tam Thanh", "thành phố Tam Kỳ", "tỉnh Quảng Nam"),
            "0905 123 456",
        ),
        dossier_code=f"000.00.10.H47-261121-{i:04d}",
        printed_at=dt.datetime(2026, 11, 21, 8, 30),
        route_code="QNG-01",
        stop_no=i % 40 + 1,
        appointment_date=dt.date(2026, 11, 25),
        due_date=dt.date(2026, 11, 27),
        postage_vnd=12_000,
        collect_vnd=41_000 if i % 3 == 0 else 0,
        hotline="1022",
        procedure_name="Cấp đổi giấy phép lái xe",
    )


def naive(items: list) -> bytes:  # noqa: ANN001 - the baseline as people write it
    import io

    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode import code128, qr
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.units import mm
    from reportlab.pdfgen.canvas import Canvas

    from labels.fonts import FONT, FONT_BOLD, register

    register()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(100 * mm, 150 * mm))
    for it in items:
        c.setFont(FONT_BOLD, 30)
        c.drawString(5 * mm, 135 * mm, f"{it.route_code} · {it.stop_no}")
        code128.Code128(it.item_id, barWidth=0.375 * mm, barHeight=15 * mm).drawOn(c, 10 * mm, 105 * mm)
        widget = qr.QrCodeWidget(it.tracking_url, barWidth=30 * mm, barHeight=30 * mm)
        d = Drawing(30 * mm, 30 * mm)
        d.add(widget)
        renderPDF.draw(d, c, 65 * mm, 5 * mm)
        c.setFont(FONT, 9)
        lines = [
            it.item_id,
            it.recipient.name,
            it.recipient.phone or "",
            *it.recipient.address,
            it.sender.name,
            *it.sender.address,
            it.dossier_code,
            str(it.due_date),
            f"{it.postage_vnd} ₫",
        ]
        for n, line in enumerate(lines[:12]):
            c.drawString(5 * mm, (95 - n * 5) * mm, line)
        c.showPage()
    c.save()
    return buf.getvalue()


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def verify(kind: str, out: bytes, items: list) -> str:  # noqa: ANN001
    """Check that ``out`` holds ``len(items)`` labels and that the first, middle and last scan back
    (their Code 128 and QR decoded by zxing-cpp from poppler's or zplkit's rendering at 203 dpi).
    Raises AssertionError; returns what was checked."""
    import io

    import zxingcpp
    from PIL import Image

    n = len(items)
    picks = sorted({0, n // 2, n - 1})
    if kind == "zpl":
        import zplkit

        text = out.decode("utf-8")
        blocks = text.split("^XZ")[:-1]
        assert len(blocks) == n and text.count("^XA") == n, (len(blocks), n)
        sample = "".join(blocks[i] + "^XZ\n" for i in picks).encode()
        doc = zplkit.render(sample, zplkit.Options(width=800, height=1200, dpi=203))
        images = [Image.open(io.BytesIO(lab.png())).convert("L") for lab in doc.labels]
    else:
        import pypdf

        pages = len(pypdf.PdfReader(io.BytesIO(out)).pages)
        assert pages == n, (pages, n)
        images = []
        for i in picks:
            args = ["pdftoppm", "-r", "203", "-f", str(i + 1), "-l", str(i + 1), "-gray", "-png", "-"]
            png = subprocess.run(args, input=out, capture_output=True, check=True).stdout
            images.append(Image.open(io.BytesIO(png)))
    assert len(images) == len(picks)
    for i, image in zip(picks, images, strict=True):
        found = {(str(b.format), b.text) for b in zxingcpp.read_barcodes(image)}
        want = {("Code 128", items[i].item_id), ("QR Code", items[i].tracking_url)}
        assert want <= found, (kind, i, found)
    return f"{n} labels, {len(picks)} decoded"


def run(kind: str, n: int, offset: int = 0) -> tuple[float, int, float, str]:
    """Render ``n`` labels of ``kind`` in this process: (seconds, bytes, peak MB, what was verified).

    One warm-up label first (fonts registered, modules imported), from another batch than the one
    timed, so that no cache holds the timed labels' texts already."""
    from labels import render_labels, render_zpl

    fn = {"labels": render_labels, "naive": naive, "zpl": render_zpl}[kind]
    fn([sample(10_000_000 + offset)])
    items = [sample(offset + i + 1) for i in range(n)]
    t = time.perf_counter()
    out = fn(items)
    elapsed, mb = time.perf_counter() - t, _maxrss_mb()
    return elapsed, len(out), mb, verify(kind, out, items)


def _child(args: tuple[str, int, int]) -> tuple[float, int, float, str]:
    return run(*args)


def in_fresh_process(kind: str, n: int) -> tuple[float, int, float, str]:
    """Time to the first bytes in a new interpreter, imports and font loading included."""
    code = (
        f"import time,resource,sys; t=time.perf_counter(); sys.path.insert(0, {str(ROOT)!r});"
        "from labels import render_labels, render_zpl;"
        "import importlib.util as u; s=u.spec_from_file_location('b', sys.argv[1]); b=u.module_from_spec(s);"
        "s.loader.exec_module(b); items=[b.sample(i+1) for i in range(" + str(n) + ")];"
        f"out={{'labels': render_labels, 'zpl': render_zpl, 'naive': b.naive}}[{kind!r}](items);"
        "e=time.perf_counter()-t; mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024;"
        f"print(e, len(out), mb, b.verify({kind!r}, out, items).replace(' ', '_'))"
    )
    args = [sys.executable, "-c", code, __file__]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    s, size, mb, checked = out.split()
    return float(s), int(size), float(mb), checked.replace("_", " ")


def two_workers(kind: str, n: int) -> tuple[float, int, float, str]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        # start both interpreters before timing
        pool.map(_child, [(kind, 1, 5_000_000), (kind, 1, 6_000_000)])
        t = time.perf_counter()
        parts = pool.map(_child, [(kind, n // 2, 0), (kind, n - n // 2, n // 2)])
        elapsed = time.perf_counter() - t
    return elapsed, sum(p[1] for p in parts), max(p[2] for p in parts), " + ".join(p[3] for p in parts)


def one_process(kind: str, n: int, offset: int) -> tuple[float, int, float, str]:
    """``n`` labels in a process of their own, so that peak memory and caches are this case's alone."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(run, (kind, n, offset))


def main() -> int:
    import argparse
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the 1,000-label cases (median)")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    rates: dict[str, list[float]] = {}

    def row(case: str, kind: str, n: int, result: tuple[float, int, float, str]) -> None:
        seconds, size, mb, checked = result
        rate = f"{n / seconds:,.1f} | {seconds * 1000:,.1f} ms"
        rows.append((case, kind, f"| {rate} | {size // n:,} | {mb:.0f} MB | {checked} |"))

    kinds = ("labels", "naive", "zpl")
    for kind in kinds:
        row("1 label, fresh process (incl. imports)", kind, 1, in_fresh_process(kind, 1))
        for n in (1, 100):
            row(f"{n:,} label{'s' if n > 1 else ''}, one process", kind, n, one_process(kind, n, 0))
    # the 1,000-label cases alternate between the renderers, each round in new processes
    thousand: dict[str, list[tuple[float, int, float, str]]] = {k: [] for k in kinds}
    for r in range(args.rounds):
        for kind in kinds:
            thousand[kind].append(one_process(kind, 1000, 1000 * r))
    for kind in kinds:
        runs = sorted(thousand[kind])
        rates[kind] = [1000 / x[0] for x in runs]
        mid = runs[len(runs) // 2]
        row(f"1,000 labels, one process, median of {len(runs)} (range {min(rates[kind]):,.0f}–"
            f"{max(rates[kind]):,.0f}/s)", kind, 1000, (mid[0], mid[1], max(x[2] for x in runs), mid[3]))
    for kind in kinds:
        row("1,000 labels, 2 processes", kind, 1000, two_workers(kind, 1000))
    names = {
        "labels": "labels.render_labels (PDF)",
        "naive": "naive reportlab (BASELINES)",
        "zpl": "labels.render_zpl",
    }
    print(run_line())
    print()
    print("| case | renderer | labels/s | time | bytes/label | peak memory | verified |")
    print("|---|---|---|---|---|---|---|")
    for case, kind, rest in rows:
        print(f"| {case} | {names[kind]} {rest}")
    ratio = [z / p for z, p in zip(rates["zpl"], rates["labels"], strict=True)]
    print()
    print(f"- ZPL ÷ PDF labels/s, 1,000 labels, per round: {', '.join(f'{x:.2f}' for x in ratio)}; "
          f"median {statistics.median(ratio):.2f} (target ≥ 1): "
          f"**{'PASS' if statistics.median(ratio) >= 1 else 'FAIL'}**")
    return 0


if __name__ == "__main__":
    sys.exit(main())
