"""The geocoding scanner's cursor in the event log (one row, its lease and the run holding it): new
orders and address changes are located by a background run that reads the log, so an order's commit
writes nothing for its geocoding. It starts at the log's current end: the orders before it were each queued for
geocoding by the code they were written with.

Revision ID: 0027
Revises: 0026
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade():
    cursor = op.create_table(
        'geo_cursor',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('cursor_event_id', ID, nullable=False),
        sa.Column('locked_until', TS, nullable=True),
        sa.Column('lease_owner', sa.String(32), nullable=True),
    )
    start = op.get_bind().scalar(sa.text("SELECT COALESCE(MAX(id), 0) FROM order_events"))
    op.bulk_insert(cursor, [{"id": 1, "cursor_event_id": start, "locked_until": None, "lease_owner": None}])


def downgrade():
    op.drop_table('geo_cursor')
