"""Orders get an optional delivery window (appointment time of day): delivery_orders.window_from_min and
window_to_min, minutes after local midnight (Asia/Ho_Chi_Minh), both set or both NULL.

Revision ID: 0022
Revises: 0021
"""
import sqlalchemy as sa
from alembic import op

from delivery_service.db import sqlite_rebuild_triggers


revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

CHECK = ('(window_from_min IS NULL AND window_to_min IS NULL) OR '
         '(window_from_min >= 360 AND window_to_min <= 1260 AND window_to_min - window_from_min >= 30)')


def upgrade():
    op.add_column('delivery_orders', sa.Column('window_from_min', sa.SmallInteger(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        # A plain ADD COLUMN with the check on the column: a batch rebuild of delivery_orders would
        # break the event log's triggers that name it (migration 0019).
        op.execute('ALTER TABLE delivery_orders ADD COLUMN window_to_min SMALLINT '
                   f'CONSTRAINT ck_delivery_orders_window_range CHECK ({CHECK})')
    else:
        op.add_column('delivery_orders', sa.Column('window_to_min', sa.SmallInteger(), nullable=True))
        op.create_check_constraint(op.f('ck_delivery_orders_window_range'), 'delivery_orders', CHECK)


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        # The check stays on window_to_min as this migration made it only until a later one rebuilds the
        # table (0029): then it is the table's, and SQLite's DROP COLUMN refuses a column it names. A
        # rebuild drops both either way, with the event log's triggers set aside meanwhile.
        triggers = sqlite_rebuild_triggers(op.get_bind(), 'delivery_orders')
        with op.batch_alter_table('delivery_orders', recreate='always') as batch:
            batch.drop_constraint(op.f('ck_delivery_orders_window_range'), type_='check')
            batch.drop_column('window_to_min')
            batch.drop_column('window_from_min')
        for sql in triggers:
            op.execute(sql)
        return
    else:
        op.drop_constraint(op.f('ck_delivery_orders_window_range'), 'delivery_orders', type_='check')
        op.drop_column('delivery_orders', 'window_to_min')
    op.drop_column('delivery_orders', 'window_from_min')
