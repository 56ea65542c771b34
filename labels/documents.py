"""Office documents: the citizen's receipt, the handover manifest and the courier's run sheet (PDF).

Public API::

    render_receipt(data: ReceiptData, size: str = "a5", *, dpi: int = 300) -> bytes   # A5 or A4
    render_manifest(data: ManifestData, *, dpi: int = 300) -> bytes                    # A4 portrait
    render_run_sheet(data: RunSheetData, *, dpi: int = 300) -> bytes                   # A4 portrait

Each lives in its own module (labels.receipt, labels.manifest, labels.runsheet), built from the
parts in labels.docparts (reportlab platypus). Every free text wraps inside its cell or column, so
nothing runs off the page; long tables continue on further pages with their header row repeated,
one item to a row, so documents of any length lay out; every multi-page document prints
"Trang x/y · Page x of y". Captions are Vietnamese first, English second. Bars of every Code 128 are
whole dots of the printer's ``dpi`` and start on a dot of that grid (see
:func:`labels.barcodes.draw_code128`); QR modules are drawn as rectangles by
:func:`labels.barcodes.draw_qr`. Amounts are whole đồng, printed as ``26.000 ₫``. Input that cannot
be laid out raises :class:`labels.model.LabelError`.
"""

from labels.manifest import render_manifest
from labels.receipt import render_receipt
from labels.runsheet import render_run_sheet

__all__ = ["render_manifest", "render_receipt", "render_run_sheet"]
