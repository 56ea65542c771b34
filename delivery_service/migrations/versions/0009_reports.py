"""Reports: report_days, report_weeks and report_months (rollups kept exact by folding the event log),
report_orders and report_cursor (the fold's memory), report_units (every commune's place across the
2025 reform), report_areas (+ communes), counter_daily_totals, weekly_reports; and a partial index of
open orders by creation time.

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
KEYS = ('commune_id', 'route_id', 'counter_id', 'courier_id')
# Counts as they were in this revision: the measures, then 15 bins of handover-to-delivery hours.
COUNTS = ('received', 'received_results', 'delivered', 'on_time', 'failed_attempts', 'returned', 'cancelled',
          'abandoned', *(f'h{i}' for i in range(15)))


def _rollup_table(name, period):
    """report_days, report_weeks or report_months: one row per period and key, every count 0 at first."""
    op.create_table(name,
    sa.Column(period, sa.Date(), nullable=False),
    *[sa.Column(k, ID, nullable=False) for k in KEYS],
    *[sa.Column(c, sa.Integer(), server_default='0', nullable=False) for c in COUNTS],
    sa.PrimaryKeyConstraint(period, *KEYS, name=op.f(f'pk_{name}'))
    )



def upgrade():
    op.create_table('report_cursor',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('folded_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_cursor'))
    )
    _rollup_table('report_days', 'day')
    _rollup_table('report_months', 'month')
    _rollup_table('report_weeks', 'week')
    op.create_table('report_orders',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('received_day', sa.Date(), nullable=True),
    sa.Column('received_commune_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('handed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('handed_result', sa.Boolean(), nullable=False),
    sa.Column('closed_kind', sa.String(length=16), nullable=True),
    sa.Column('closed_day', sa.Date(), nullable=True),
    sa.Column('closed_commune_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed_route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed_counter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed_courier_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('closed_on_time', sa.Boolean(), nullable=False),
    sa.Column('closed_bin', sa.Integer(), nullable=True),
    sa.Column('failed_day', sa.Date(), nullable=True),
    sa.Column('failed_commune_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('failed_route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('failed_counter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('failed_courier_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_report_orders'))
    )
    op.create_table('weekly_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period_start', sa.Date(), nullable=False),
    sa.Column('period_end', sa.Date(), nullable=False),
    sa.Column('scope', sa.String(length=48), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_weekly_reports')),
    sa.UniqueConstraint('period_start', 'scope', name='uq_weekly_reports_period_scope')
    )
    op.create_table('report_units',
    sa.Column('unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('commune_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('province_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('district_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.ForeignKeyConstraint(['commune_id'], ['admin_units.id'], name=op.f('fk_report_units_commune_id_admin_units'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['district_id'], ['admin_units.id'], name=op.f('fk_report_units_district_id_admin_units'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['province_id'], ['admin_units.id'], name=op.f('fk_report_units_province_id_admin_units'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['unit_id'], ['admin_units.id'], name=op.f('fk_report_units_unit_id_admin_units'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('unit_id', name=op.f('pk_report_units'))
    )
    with op.batch_alter_table('report_units', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_units_commune_id'), ['commune_id'], unique=False)
        batch_op.create_index('ix_report_units_district', ['district_id'], unique=False)
        batch_op.create_index('ix_report_units_province', ['province_id'], unique=False)

    op.create_table('counter_daily_totals',
    sa.Column('counter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('results_total', sa.Integer(), nullable=False),
    sa.Column('reported_by_user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('reported_by_client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('results_total >= 0', name=op.f('ck_counter_daily_totals_total_positive')),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'], name=op.f('fk_counter_daily_totals_counter_id_counters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reported_by_client_id'], ['api_clients.id'], name=op.f('fk_counter_daily_totals_reported_by_client_id_api_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reported_by_user_id'], ['users.id'], name=op.f('fk_counter_daily_totals_reported_by_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('counter_id', 'day', name=op.f('pk_counter_daily_totals'))
    )
    op.create_table('report_areas',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('owner_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_report_areas_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['owner_unit_id'], ['admin_units.id'], name=op.f('fk_report_areas_owner_unit_id_admin_units'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_report_areas')),
    sa.UniqueConstraint('code', name=op.f('uq_report_areas_code'))
    )
    with op.batch_alter_table('report_areas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_report_areas_owner_unit_id'), ['owner_unit_id'], unique=False)

    op.create_table('report_area_communes',
    sa.Column('area_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['report_areas.id'], name=op.f('fk_report_area_communes_area_id_report_areas'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['admin_units.id'], name=op.f('fk_report_area_communes_unit_id_admin_units'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('area_id', 'unit_id', name=op.f('pk_report_area_communes'))
    )
    with op.batch_alter_table('report_area_communes', schema=None) as batch_op:
        batch_op.create_index('ix_report_area_communes_unit_id', ['unit_id'], unique=False)

    op.create_index('ix_orders_open_created', 'delivery_orders', ['created_at', 'commune_id', 'route_id', 'counter_id', 'due_date', 'status', 'direction'], unique=False, postgresql_where=sa.text("status NOT IN ('delivered', 'returned_to_agency', 'cancelled')"), sqlite_where=sa.text("status NOT IN ('delivered', 'returned_to_agency', 'cancelled')"))



def downgrade():
    op.drop_index('ix_orders_open_created', table_name='delivery_orders', postgresql_where=sa.text("status NOT IN ('delivered', 'returned_to_agency', 'cancelled')"), sqlite_where=sa.text("status NOT IN ('delivered', 'returned_to_agency', 'cancelled')"))

    with op.batch_alter_table('report_area_communes', schema=None) as batch_op:
        batch_op.drop_index('ix_report_area_communes_unit_id')

    op.drop_table('report_area_communes')
    with op.batch_alter_table('report_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_report_areas_owner_unit_id'))

    op.drop_table('report_areas')
    op.drop_table('counter_daily_totals')
    with op.batch_alter_table('report_units', schema=None) as batch_op:
        batch_op.drop_index('ix_report_units_province')
        batch_op.drop_index('ix_report_units_district')
        batch_op.drop_index(batch_op.f('ix_report_units_commune_id'))

    op.drop_table('report_units')
    op.drop_table('weekly_reports')
    op.drop_table('report_orders')
    op.drop_table('report_months')
    op.drop_table('report_weeks')
    op.drop_table('report_days')
    op.drop_table('report_cursor')
