"""Reports keep their figures across a change: report_years (the rollup by calendar year, filled here
from report_months), report_changes (each fold batch's cursor before and after, and the earliest
and latest local days whose figures it changed, indexed by when it was folded for the pruning),
report_cursor.units_version (bumped by each rebuild of the unit map), report_cursor.generation (a
new value whenever the cursor goes back or its row is made again) and report_cursor.recorded_event_id
(the cursor as the fold that keeps report_years and report_changes left it: a fold by code older
than this revision moves the cursor without it).

Revision ID: 0025
Revises: 0024
"""
import sqlalchemy as sa
from alembic import op


revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
KEYS = ('commune_id', 'route_id', 'counter_id', 'courier_id')
# Counts as they are in this revision: the measures, then 15 bins of handover-to-delivery hours.
COUNTS = ('received', 'received_results', 'delivered', 'on_time', 'failed_attempts', 'returned', 'cancelled',
          'abandoned', *(f'h{i}' for i in range(15)))


def upgrade():
    op.create_table('report_years',
    sa.Column('year', sa.Date(), nullable=False),
    *[sa.Column(k, ID, nullable=False) for k in KEYS],
    *[sa.Column(c, sa.Integer(), server_default='0', nullable=False) for c in COUNTS],
    sa.PrimaryKeyConstraint('year', *KEYS, name=op.f('pk_report_years'))
    )
    op.create_table('report_changes',
    sa.Column('event_id', ID, autoincrement=False, nullable=False),
    sa.Column('from_event_id', ID, nullable=False),
    sa.Column('first_day', sa.Date(), nullable=True),
    sa.Column('last_day', sa.Date(), nullable=True),
    sa.Column('folded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cursor_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cursor_id'], ['report_cursor.id'],
                            name=op.f('fk_report_changes_cursor_id_report_cursor'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_report_changes'))
    )
    op.create_index('ix_report_changes_folded_at', 'report_changes', ['folded_at'])
    with op.batch_alter_table('report_cursor') as batch:
        batch.add_column(sa.Column('units_version', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('generation', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('recorded_event_id', ID, server_default='0', nullable=False))
    op.execute("UPDATE report_cursor SET recorded_event_id = event_id")
    # The years of what the fold has kept so far, from its months.
    year = ("CAST(date_trunc('year', month) AS date)" if op.get_bind().dialect.name == 'postgresql'
            else "date(month, 'start of year')")
    keys = ', '.join(KEYS)
    op.execute(f"INSERT INTO report_years (year, {keys}, {', '.join(COUNTS)}) "
               f"SELECT {year}, {keys}, {', '.join(f'SUM({c})' for c in COUNTS)} "
               f"FROM report_months GROUP BY {year}, {keys}")


def downgrade():
    with op.batch_alter_table('report_cursor') as batch:
        batch.drop_column('recorded_event_id')
        batch.drop_column('generation')
        batch.drop_column('units_version')
    op.drop_index('ix_report_changes_folded_at', table_name='report_changes')
    op.drop_table('report_changes')
    op.drop_table('report_years')
