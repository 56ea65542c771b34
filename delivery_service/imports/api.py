"""/api/v1/imports: batch import of CSV and XLSX files."""

from flask_smorest import Blueprint

from delivery_service.api import protected

blp = protected(Blueprint("imports_api", __name__, url_prefix="/imports", description="Batch imports"))
