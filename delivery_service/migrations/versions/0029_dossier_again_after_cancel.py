"""A cancelled order no longer holds its dossier: the unique (counter_id, dossier_code, direction)
becomes a unique index over the orders that are not cancelled, so that a counter can cancel an order
made with wrong data and send the same dossier again. The Idempotency-Key stays unique over every
order, cancelled or not: a client's retry still finds the order it created.

PostgreSQL drops the constraint and builds the partial unique index (it holds the table's write lock
while it builds: seconds per million orders). SQLite cannot drop a table constraint: the table is
rebuilt (batch mode, its indexes recreated as they were); the order_events triggers that read
delivery_orders are dropped around the rebuild and made again, since SQLite checks them when the new
copy is renamed.

Revision ID: 0029
Revises: 0028
"""
import sqlalchemy as sa
from alembic import op

from delivery_service.db import sqlite_rebuild_triggers

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

NOT_CANCELLED = "status <> 'cancelled'"
COLUMNS = ['counter_id', 'dossier_code', 'direction']


def _sqlite_triggers() -> list[str]:
    return sqlite_rebuild_triggers(op.get_bind(), 'delivery_orders')


def upgrade():
    if op.get_bind().dialect.name == 'sqlite':
        triggers = _sqlite_triggers()
        with op.batch_alter_table('delivery_orders', recreate='always') as batch:
            batch.drop_constraint('uq_orders_dossier', type_='unique')
        for sql in triggers:
            op.execute(sql)
    else:
        op.drop_constraint('uq_orders_dossier', 'delivery_orders', type_='unique')
    op.create_index('uq_orders_dossier', 'delivery_orders', COLUMNS, unique=True,
                    postgresql_where=sa.text(NOT_CANCELLED), sqlite_where=sa.text(NOT_CANCELLED))


def downgrade():
    # A dossier sent again after a cancellation has two orders, which the old constraint cannot hold:
    # refuse before any DDL (SQLite runs each statement on its own: a failure half way would leave the
    # table without its unique index and the event log without its triggers).
    again = op.get_bind().exec_driver_sql(
        "SELECT counter_id, dossier_code, direction FROM delivery_orders GROUP BY counter_id, dossier_code, "
        "direction HAVING count(*) > 1 LIMIT 5").all()
    if again:
        shown = ", ".join(f"{code} ({direction}, counter {counter})" for counter, code, direction in again)
        raise RuntimeError(f"Cannot downgrade below 0029: dossiers sent again after a cancellation have two "
                           f"orders each (e.g. {shown}); the older code allows one. Keep 0029, or restore the "
                           "backup taken before the upgrade.")
    op.drop_index('uq_orders_dossier', table_name='delivery_orders')
    if op.get_bind().dialect.name == 'sqlite':
        triggers = _sqlite_triggers()
        with op.batch_alter_table('delivery_orders', recreate='always') as batch:
            batch.create_unique_constraint('uq_orders_dossier', COLUMNS)
        for sql in triggers:
            op.execute(sql)
    else:
        op.create_unique_constraint('uq_orders_dossier', 'delivery_orders', COLUMNS)
