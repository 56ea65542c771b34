"""Routing: coverage by hamlet or street (route_rules), daily capacity with backup routes
(route_day_loads), sequenced runs (route_runs, run_stops), supervisors scoped to a post office,
and on orders the run date and why a person must dispatch them.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UTC = sa.DateTime(timezone=True)
ROLES = ("counter_staff", "courier", "supervisor", "district_officer", "admin")
OLD_ROLES = ("counter_staff", "courier", "district_officer", "admin")
SCOPE = ("(role <> 'counter_staff' OR counter_id IS NOT NULL)"
         " AND (role <> 'district_officer' OR area_unit_id IS NOT NULL)")


def _in(values):
    return "role IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade():
    op.create_table(
        "route_day_loads",
        sa.Column("route_id", ID, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.CheckConstraint("orders >= 0", name=op.f("ck_route_day_loads_orders_positive")),
        sa.ForeignKeyConstraint(["route_id"], ["postal_routes.id"],
                                name=op.f("fk_route_day_loads_route_id_postal_routes"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("route_id", "day", name=op.f("pk_route_day_loads")),
    )
    op.create_table(
        "route_rules",
        sa.Column("id", ID, nullable=False),
        sa.Column("route_id", ID, nullable=False),
        sa.Column("commune_id", ID, nullable=False),
        sa.Column("kind", sa.Enum("hamlet", "street", name="part_kind", native_enum=False,
                                  create_constraint=True, length=16), nullable=False),
        sa.Column("phrase", sa.String(length=120), nullable=False),
        sa.Column("phrase_key", sa.String(length=120), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(["commune_id"], ["admin_units.id"],
                                name=op.f("fk_route_rules_commune_id_admin_units"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["route_id"], ["postal_routes.id"],
                                name=op.f("fk_route_rules_route_id_postal_routes"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_rules")),
        sa.UniqueConstraint("route_id", "commune_id", "kind", "phrase_key",
                            name=op.f("uq_route_rules_route_id_commune_id_kind_phrase_key")),
    )
    op.create_index("ix_route_rules_commune_id", "route_rules", ["commune_id"])
    op.create_table(
        "route_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("route_id", ID, nullable=False),
        sa.Column("run_date", sa.Date(), nullable=False),
        sa.Column("sequenced_at", UTC, nullable=False),
        sa.Column("sequenced_by_id", ID, nullable=True),
        sa.Column("return_to_office", sa.Boolean(), nullable=False),
        sa.Column("start_latitude", sa.Double(), nullable=False),
        sa.Column("start_longitude", sa.Double(), nullable=False),
        sa.Column("stops", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("total_m", sa.Double(), nullable=False),
        sa.Column("return_m", sa.Double(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["route_id"], ["postal_routes.id"],
                                name=op.f("fk_route_runs_route_id_postal_routes"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sequenced_by_id"], ["users.id"],
                                name=op.f("fk_route_runs_sequenced_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_route_runs")),
        sa.UniqueConstraint("route_id", "run_date", name=op.f("uq_route_runs_route_id_run_date")),
    )
    op.create_table(
        "run_stops",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("stop_no", sa.Integer(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("estimated", sa.Boolean(), nullable=False),
        sa.Column("located", sa.Boolean(), nullable=False),
        sa.Column("leg_m", sa.Double(), nullable=False),
        sa.Column("cumulative_m", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["delivery_orders.id"],
                                name=op.f("fk_run_stops_order_id_delivery_orders"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["route_runs.id"],
                                name=op.f("fk_run_stops_run_id_route_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "order_id", name=op.f("pk_run_stops")),
    )
    op.create_index("ix_run_stops_order_id", "run_stops", ["order_id"])

    # Plain ADD COLUMNs: no table rebuild for the two big tables (order_events is append-only,
    # its triggers must stay).
    op.add_column("delivery_orders", sa.Column("run_date", sa.Date(), nullable=True))
    op.add_column("delivery_orders", sa.Column("dispatch", sa.String(length=24), nullable=True))
    op.create_index("ix_orders_dispatch", "delivery_orders", ["dispatch"])
    op.create_index("ix_orders_route_run_date", "delivery_orders", ["route_id", "run_date"])
    op.add_column("order_events", sa.Column("route_id", ID, nullable=True))
    op.add_column("post_offices", sa.Column("latitude", sa.Double(), nullable=True))
    op.add_column("post_offices", sa.Column("longitude", sa.Double(), nullable=True))

    with op.batch_alter_table("postal_routes") as batch_op:
        batch_op.add_column(sa.Column("capacity_per_day", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("backup_route_id", ID, nullable=True))
        batch_op.add_column(sa.Column("return_to_office", sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
        batch_op.create_foreign_key(op.f("fk_postal_routes_backup_route_id_postal_routes"), "postal_routes",
                                    ["backup_route_id"], ["id"], ondelete="SET NULL")
        batch_op.create_check_constraint(op.f("ck_postal_routes_capacity"),
                                         "capacity_per_day IS NULL OR capacity_per_day >= 0")
        batch_op.create_check_constraint(op.f("ck_postal_routes_backup_not_self"),
                                         "backup_route_id IS NULL OR backup_route_id <> id")

    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("post_office_id", ID, nullable=True))
        batch_op.create_index(op.f("ix_users_post_office_id"), ["post_office_id"], unique=False)
        batch_op.create_foreign_key(op.f("fk_users_post_office_id_post_offices"), "post_offices",
                                    ["post_office_id"], ["id"], ondelete="RESTRICT")
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), _in(ROLES))
        batch_op.drop_constraint(op.f("ck_users_scope_by_role"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_users_scope_by_role"), SCOPE + " AND (role <> 'supervisor' OR post_office_id IS NOT NULL)")


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(op.f("ck_users_scope_by_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_scope_by_role"), SCOPE)
        batch_op.drop_constraint(op.f("ck_users_role"), type_="check")
        batch_op.create_check_constraint(op.f("ck_users_role"), _in(OLD_ROLES))
        batch_op.drop_constraint(op.f("fk_users_post_office_id_post_offices"), type_="foreignkey")
        batch_op.drop_index(op.f("ix_users_post_office_id"))
        batch_op.drop_column("post_office_id")
    with op.batch_alter_table("postal_routes") as batch_op:
        batch_op.drop_constraint(op.f("ck_postal_routes_backup_not_self"), type_="check")
        batch_op.drop_constraint(op.f("ck_postal_routes_capacity"), type_="check")
        batch_op.drop_constraint(op.f("fk_postal_routes_backup_route_id_postal_routes"), type_="foreignkey")
        batch_op.drop_column("return_to_office")
        batch_op.drop_column("backup_route_id")
        batch_op.drop_column("capacity_per_day")
    op.drop_column("post_offices", "longitude")
    op.drop_column("post_offices", "latitude")
    op.drop_column("order_events", "route_id")
    op.drop_index("ix_orders_route_run_date", "delivery_orders")
    op.drop_index("ix_orders_dispatch", "delivery_orders")
    op.drop_column("delivery_orders", "dispatch")
    op.drop_column("delivery_orders", "run_date")
    op.drop_table("run_stops")
    op.drop_table("route_runs")
    op.drop_table("route_rules")
    op.drop_table("route_day_loads")
