"""Label, receipt and manifest rendering. A library: no Flask, no database.

Typed dataclasses in (labels.model), bytes out, LabelError for input it cannot render.
"""

from labels import s10
from labels.documents import render_manifest, render_receipt, render_run_sheet
from labels.label import layout_label, render_labels
from labels.model import (
    LabelData,
    LabelError,
    LabelSize,
    ManifestData,
    ManifestKind,
    ManifestLine,
    Party,
    ReceiptData,
    RunSheetData,
    RunSheetStop,
    Service,
)
from labels.zpl import render_zpl

__all__ = [
    "LabelData",
    "LabelError",
    "LabelSize",
    "ManifestData",
    "ManifestKind",
    "ManifestLine",
    "Party",
    "ReceiptData",
    "RunSheetData",
    "RunSheetStop",
    "Service",
    "layout_label",
    "render_labels",
    "render_manifest",
    "render_receipt",
    "render_run_sheet",
    "render_zpl",
    "s10",
]
