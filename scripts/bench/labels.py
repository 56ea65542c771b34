"""Benchmark: shipping labels per second, labels.render_labels vs a naive plain-reportlab label.

Cases: 1 label in a fresh process (time to the first bytes, imports and fonts included), 1 label
in a warm process, 100 and 1,000 labels in one PDF in one process, 1,000 labels with 2 worker
processes (each renders half), and ZPL. Peak memory is ru_maxrss of the process that rendered.
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
sys.path.insert(0, str(ROOT))


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


def run(kind: str, n: int, offset: int = 0) -> tuple[float, int, float]:
    """Render ``n`` labels of ``kind`` in this process: (seconds, bytes, peak MB)."""
    from labels import render_labels, render_zpl

    items = [sample(offset + i + 1) for i in range(n)]
    fn = {"labels": render_labels, "naive": naive, "zpl": render_zpl}[kind]
    fn(items[:1])  # warm: fonts registered, caches filled
    t = time.perf_counter()
    out = fn(items)
    return time.perf_counter() - t, len(out), _maxrss_mb()


def _child(args: tuple[str, int, int]) -> tuple[float, int, float]:
    return run(*args)


def in_fresh_process(kind: str, n: int) -> tuple[float, int, float]:
    """Time to the first bytes in a new interpreter, imports and font loading included."""
    code = (
        f"import time,resource,sys; t=time.perf_counter(); sys.path.insert(0, {str(ROOT)!r});"
        "from scripts.bench.labels import sample, naive; from labels import render_labels;"
        f"b=(render_labels if {kind!r}=='labels' else naive)([sample(i+1) for i in range({n})]);"
        "print(time.perf_counter()-t, len(b), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    s, size, mb = out.split()
    return float(s), int(size), float(mb)


def two_workers(kind: str, n: int) -> tuple[float, int, float]:
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_child, [(kind, 1, 0), (kind, 1, 0)])  # start both interpreters before timing
        t = time.perf_counter()
        parts = pool.map(_child, [(kind, n // 2, 0), (kind, n - n // 2, n // 2)])
        elapsed = time.perf_counter() - t
    return elapsed, sum(p[1] for p in parts), max(p[2] for p in parts)


def main() -> None:
    rows: list[tuple[str, str, str]] = []

    def row(case: str, kind: str, n: int, result: tuple[float, int, float]) -> None:
        seconds, size, mb = result
        rate = f"{n / seconds:,.1f} | {seconds * 1000:,.1f} ms"
        rows.append((case, kind, f"| {rate} | {size // n:,} | {mb:.0f} MB |"))

    for kind in ("labels", "naive"):
        row("1 label, fresh process (incl. imports)", kind, 1, in_fresh_process(kind, 1))
        ctx = mp.get_context("spawn")
        for n in (1, 100, 1000):
            with ctx.Pool(1) as pool:  # each case in its own process so peak memory is its own
                row(f"{n:,} label{'s' if n > 1 else ''}, one process", kind, n, pool.apply(run, (kind, n)))
        row("1,000 labels, 2 processes", kind, 1000, two_workers(kind, 1000))
    with mp.get_context("spawn").Pool(1) as pool:
        for n in (1, 100, 1000):
            row(f"{n:,} label{'s' if n > 1 else ''}, one process", "zpl", n, pool.apply(run, ("zpl", n)))
    names = {
        "labels": "labels.render_labels (PDF)",
        "naive": "naive reportlab (BASELINES)",
        "zpl": "labels.render_zpl",
    }
    print("| case | renderer | labels/s | time | bytes/label | peak memory |")
    print("|---|---|---|---|---|---|")
    for case, kind, rest in rows:
        print(f"| {case} | {names[kind]} {rest}")


if __name__ == "__main__":
    main()
