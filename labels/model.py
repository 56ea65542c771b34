"""What the label library draws: plain, typed data. The service turns its orders into these.

All text is drawn as given after NFC normalisation; captions on the documents are the library's own
(Vietnamese first, English second). Amounts are whole đồng.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class LabelError(ValueError):
    """Input the label library cannot render; the message says what is wrong."""


class LabelSize(enum.StrEnum):
    """Page sizes of shipping labels. A4 is a sheet of several labels for office printers."""

    L100X150 = "100x150"  # 4x6 in thermal stock, the default
    L100X100 = "100x100"
    A6 = "a6"  # 105 x 148 mm
    A4 = "a4"  # sheet of 100x150-style labels (2 x 2 per page, crop marks)


class Service(enum.StrEnum):
    RESULT_TO_CITIZEN = "result_to_citizen"  # trả kết quả đến tay người dân
    DOSSIER_TO_AGENCY = "dossier_to_agency"  # chuyển hồ sơ đến cơ quan
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Party:
    """A sender or recipient: a name, address lines (most specific first), an optional phone."""

    name: str
    address: tuple[str, ...] = ()
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class LabelData:
    """One shipping label (also what a ZPL label is built from)."""

    item_id: str  # UPU S10, e.g. RH000000042VN: printed as Code 128 and in text
    tracking_url: str  # the QR code carries exactly this
    service: Service
    sender: Party  # the agency / one-stop counter
    recipient: Party
    dossier_code: str
    printed_at: dt.datetime  # local time, as printed
    route_code: str | None = None  # large type; None: "not routed yet"
    stop_no: int | None = None  # large type beside the route code
    appointment_date: dt.date | None = None
    due_date: dt.date | None = None
    postage_vnd: int = 0  # postage the courier collects (after exemptions): "thu / due"
    # What the courier collects on this leg, everything included (fees for the agency and postage
    # due): the same figure as the run sheet and the courier app (the service computes it once).
    collect_vnd: int = 0
    hotline: str | None = None  # complaints hotline, e.g. "1022"
    procedure_name: str | None = None
    reprint: int = 0  # 0 for the first print; n: "in lại lần n" is shown
    postage_paid_vnd: int = 0  # postage already paid (at the counter or by the agency): "đã trả / paid"
    weight_g: int | None = None  # whole grams, if weighed
    issuing_agency: str | None = None  # the agency deciding the procedure, printed with the sender
    pickup: bool = False  # the courier picks the item up from the sender (the dossier leg)
    window: str | None = None  # the citizen's delivery window, e.g. "08:00–12:00": on the appointment row


@dataclass(frozen=True, slots=True)
class ReceiptData:
    """The citizen's receipt (biên nhận) for an order registered at a counter."""

    item_id: str
    tracking_url: str
    service: Service
    counter: Party  # where it was registered
    recipient: Party
    dossier_code: str
    procedure_name: str
    issuing_agency: str
    created_at: dt.datetime
    appointment_date: dt.date | None = None
    due_date: dt.date | None = None
    postage_vnd: int = 0  # full postage
    postage_due_vnd: int = 0  # after exemptions
    exemption: str | None = None  # the exemption in words, if any
    collect_vnd: int = 0  # procedure fees the courier collects for the agency (phí, lệ phí)
    hotline: str | None = None
    delivery_code: str | None = None  # the one-time code the citizen tells the courier at delivery
    # What the courier collects from the citizen, everything included: the label's "THU HỘ / COLLECT"
    # and the manifest's figure (the service computes it once). None: postage due + collect_vnd.
    to_collect_vnd: int | None = None
    postage_paid_vnd: int = 0  # postage already paid (by the agency): not collected
    cancelled_at: dt.datetime | None = None  # local time; set: the receipt is marked cancelled
    window: str | None = None  # the delivery window the citizen chose, e.g. "08:00–12:00"

    @property
    def collected(self) -> int:
        """What the courier collects: the service's figure, else postage due plus fees."""
        return self.postage_due_vnd + self.collect_vnd if self.to_collect_vnd is None else self.to_collect_vnd


class ManifestKind(enum.StrEnum):
    COUNTER_TO_COURIER = "counter_to_courier"  # bàn giao từ quầy cho bưu tá (a route's bag)
    COURIER_TO_AGENCY = "courier_to_agency"  # bàn giao hồ sơ từ bưu tá cho cơ quan
    COURIER_TO_COUNTER = "courier_to_counter"  # trả lại (returns)


@dataclass(frozen=True, slots=True)
class ManifestLine:
    """An item on a manifest or run sheet; ``postage_vnd`` and ``collect_vnd`` are the two parts of
    what the courier collects (postage due from the citizen, fees for the agency)."""

    item_id: str
    dossier_code: str
    recipient_name: str
    address: str  # one line, e.g. "12 Hùng Vương, Phường Cẩm Thành"
    postage_vnd: int = 0
    collect_vnd: int = 0
    note: str | None = None
    pickup: bool = False  # on a run sheet: the courier picks a dossier up here rather than delivers
    # On a run sheet and a manifest: the citizen's delivery window, e.g. "08:00–12:00" (the service
    # leaves it out where it no longer matters, as on a handover to the agency).
    window: str | None = None
    # On a run sheet: the item was delivered (or its dossier picked up), and the amount the courier
    # recorded collecting (None: not stated); the sheet then shows what was due and what was collected,
    # not "to collect". ``cash_on``: recorded on another day than the sheet's, whose cash counts it.
    delivered: bool = False
    collected_vnd: int | None = None
    cash_on: dt.date | None = None

    @property
    def to_collect_vnd(self) -> int:
        """What the courier collects for this item: postage due and fees (the label's amount)."""
        return self.postage_vnd + self.collect_vnd

    @property
    def difference_vnd(self) -> int:
        """Of a delivered item: collected less due (negative: short); 0 for an item still to deliver."""
        return (self.collected_vnd or 0) - self.to_collect_vnd if self.delivered else 0


@dataclass(frozen=True, slots=True)
class ManifestData:
    """A handover manifest (biên bản giao nhận): one line per item, totals, signature boxes."""

    manifest_id: str  # its own barcode (Code 128), e.g. "BB-QNG01-20261121-0003"
    kind: ManifestKind
    giver: Party  # bên giao
    receiver: Party  # bên nhận
    created_at: dt.datetime
    lines: tuple[ManifestLine, ...]
    route_code: str | None = None
    note: str | None = None
    # The people who sign, by full name (the courier for the courier's side, the counter's staff for
    # the counter's), printed beside each party and in its signature box; None leaves the name to be
    # written by hand.
    giver_person: str | None = None
    receiver_person: str | None = None


@dataclass(frozen=True, slots=True)
class RunSheetStop:
    stop_no: int
    lines: tuple[ManifestLine, ...]  # the orders at this stop (one address)
    phone: str | None = None
    leg_m: float = 0.0
    estimated: bool = False  # placed by a commune centroid


@dataclass(frozen=True, slots=True)
class RunSheetData:
    """A courier's printable run sheet for a day: the stops in order, what to collect and sign."""

    route_code: str
    route_name: str
    courier_name: str | None
    day: dt.date
    stops: tuple[RunSheetStop, ...]
    total_m: float
    printed_at: dt.datetime
    office: Party | None = None
    unsequenced: tuple[ManifestLine, ...] = field(default_factory=tuple)
    # The day's money as the service counts it: (still to collect, due on the items done that day,
    # collected on them, collected less due); None: counted from the lines (runsheet.cash_totals).
    cash: tuple[int, int, int, int] | None = None
