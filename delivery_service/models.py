"""Imports every model so that Alembic and the app see the whole schema."""

from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.admin.models import ShownOnce
from delivery_service.courier.models import DeliveryProof, EventCorrection, ProofFile
from delivery_service.geo.models import GeocodeCache, GeoCursor, KnownPlace, OrderLocation
from delivery_service.imports.models import ImportBatch, ImportRow, ImportState
from delivery_service.orders.models import DeliveryOrder, Exemption, ItemSerial, OrderEvent, Payer
from delivery_service.orgs.models import (
    Counter,
    CounterLevel,
    PostalRoute,
    PostOffice,
    route_communes,
)
from delivery_service.printing.models import LabelPrint, Manifest, PrintJob, manifest_items
from delivery_service.reports.models import (
    CounterDailyTotal,
    ReportArea,
    ReportCursor,
    ReportOrder,
    ReportUnit,
    WeeklyReport,
    report_area_communes,
    report_days,
    report_months,
)
from delivery_service.routing.models import PartKind, RouteDayLoad, RouteRule, RouteRun, RunStop
from delivery_service.units.models import AdminUnit, UnitLevel
from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "DeliveryProof", "EventCorrection", "ProofFile",
    "CounterDailyTotal", "ReportArea", "ReportCursor", "ReportOrder", "ReportUnit", "WeeklyReport",
    "report_area_communes", "report_days", "report_months",
    "LabelPrint", "Manifest", "PrintJob", "manifest_items",
    "AdminUnit", "ApiClient", "Counter", "CounterLevel", "DeliveryOrder", "Exemption", "GeoCursor",
    "GeocodeCache",
    "ImportBatch", "ImportRow", "ImportState", "ItemSerial", "KnownPlace", "OrderEvent", "OrderLocation",
    "PartKind", "Payer", "PostalRoute", "PostOffice", "Role", "route_communes", "RouteDayLoad", "RouteRule",
    "RouteRun", "RunStop", "ShownOnce", "UnitLevel", "User", "WebhookDelivery", "WebhookEndpoint",
]
