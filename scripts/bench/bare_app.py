"""The bare ceiling for order intake: Flask + Flask-SQLAlchemy + marshmallow, nothing else.

A POST to /orders validates the same JSON body the service takes (about 17 fields, nested recipient
and address) with a marshmallow schema and inserts one row with the ORM (add + commit), then answers
201 with a small JSON body. It is what docs/BASELINES.md ("Web") calls "POST order": intake.py serves
it with the same gunicorn settings and the same database kind as the service, so the service's
figures can be read as a fraction of what this machine does with the bare parts in the same run.

SQLite gets the service's connection settings (WAL, synchronous=NORMAL, foreign_keys=ON,
busy_timeout=15000, connect timeout 15 s); PostgreSQL the service's pool (pre-ping, 5 + 5).

    DATABASE_URL=sqlite:////tmp/x/bare.sqlite3 python scripts/bench/bare_app.py init
    DATABASE_URL=... gunicorn -w 2 -b 127.0.0.1:8001 --chdir scripts/bench 'bare_app:create_app()'
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


# Like the service: objects stay loaded after commit (reading order.id must not cost a SELECT).
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


class BareOrder(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "bare_orders"
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(sa.String(32))
    dossier_code: Mapped[str] = mapped_column(sa.String(64), unique=True)
    procedure_code: Mapped[str | None] = mapped_column(sa.String(64))
    procedure_name: Mapped[str] = mapped_column(sa.String(255))
    issuing_agency: Mapped[str] = mapped_column(sa.String(255))
    recipient_name: Mapped[str] = mapped_column(sa.String(255))
    recipient_phone: Mapped[str] = mapped_column(sa.String(32))
    province_code: Mapped[str] = mapped_column(sa.String(8))
    commune_code: Mapped[str] = mapped_column(sa.String(8))
    address_detail: Mapped[str] = mapped_column(sa.String(255))
    postage_vnd: Mapped[int] = mapped_column(sa.Integer)
    appointment_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    note: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[dt.datetime] = mapped_column(sa.DateTime(timezone=True))


class RecipientIn(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 255))
    phone = fields.String(required=True, validate=validate.Regexp(r"^\+?[0-9 .-]{9,15}$"))
    id_number = fields.String(load_default=None, validate=validate.Length(max=32))


class AddressIn(Schema):
    province_code = fields.String(required=True, validate=validate.Length(1, 8))
    district_code = fields.String(load_default=None, validate=validate.Length(max=8))
    commune_code = fields.String(required=True, validate=validate.Length(1, 8))
    detail = fields.String(required=True, validate=validate.Length(1, 255))


class OrderIn(Schema):
    direction = fields.String(required=True,
                              validate=validate.OneOf(["result_to_citizen", "dossier_to_agency"]))
    dossier_code = fields.String(required=True, validate=validate.Length(1, 64))
    procedure_code = fields.String(load_default=None, validate=validate.Length(max=64))
    procedure_name = fields.String(required=True, validate=validate.Length(1, 255))
    issuing_agency = fields.String(required=True, validate=validate.Length(1, 255))
    recipient = fields.Nested(RecipientIn, required=True)
    address = fields.Nested(AddressIn, required=True)
    postage_vnd = fields.Integer(load_default=0, validate=validate.Range(min=0))
    collect_vnd = fields.Integer(load_default=0, validate=validate.Range(min=0))
    payer = fields.String(load_default=None)
    exemption = fields.String(load_default=None)
    appointment_date = fields.Date(load_default=None)
    note = fields.String(load_default=None, validate=validate.Length(max=500))


ORDER_IN = OrderIn()


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5}


def _url() -> str:
    url = os.environ["DATABASE_URL"]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def create_app() -> Flask:
    app = Flask(__name__)
    url = _url()
    app.config.update(SQLALCHEMY_DATABASE_URI=url, SQLALCHEMY_ENGINE_OPTIONS=_engine_options(url))
    db.init_app(app)
    if url.startswith("sqlite"):
        with app.app_context():
            engine = db.engine

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=15000")
            cur.close()

    @app.get("/health")
    def health():
        db.session.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.post("/orders")
    def create_order():
        try:
            data = ORDER_IN.load(request.get_json(force=True))
        except ValidationError as exc:
            return jsonify(errors=exc.messages), 422
        order = BareOrder(
            direction=data["direction"], dossier_code=data["dossier_code"],
            procedure_code=data["procedure_code"], procedure_name=data["procedure_name"],
            issuing_agency=data["issuing_agency"], recipient_name=data["recipient"]["name"],
            recipient_phone=data["recipient"]["phone"], province_code=data["address"]["province_code"],
            commune_code=data["address"]["commune_code"], address_detail=data["address"]["detail"],
            postage_vnd=data["postage_vnd"], appointment_date=data["appointment_date"], note=data["note"],
            created_at=dt.datetime.now(dt.UTC),
        )
        db.session.add(order)
        db.session.commit()
        return {"id": order.id, "dossier_code": order.dossier_code}, 201

    return app


def init_db() -> None:
    """Create the table (run once, before gunicorn starts its workers)."""
    app = create_app()
    with app.app_context():
        db.create_all()
        db.engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:] == ["init"]:
        init_db()
    else:
        sys.exit(__doc__)
