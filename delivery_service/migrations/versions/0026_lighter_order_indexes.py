"""Two indexes of delivery_orders that every new order wrote for rare queries, made partial:
ix_orders_dispatch holds only the orders waiting for a person to choose their route (``dispatch IS
NOT NULL``: the dispatch queue's condition), and ix_orders_not_erased (every order not yet erased)
becomes ix_orders_erasable, the closed orders not yet erased (the daily erasure's condition,
privacy.erasure.erasable): an order enters it when it is closed, not when it is created.

Revision ID: 0026
Revises: 0025
"""
import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

DISPATCH_WHERE = 'dispatch IS NOT NULL'
# orders.models.ERASABLE_WHERE as this revision has it (the statuses of orders.status.TERMINAL).
ERASABLE_WHERE = ("personal_data_erased_at IS NULL AND "
                  "status IN ('cancelled', 'delivered', 'delivered_to_agency', 'returned_to_agency')")
NOT_ERASED_WHERE = 'personal_data_erased_at IS NULL'


def upgrade():
    op.drop_index('ix_orders_dispatch', table_name='delivery_orders')
    op.create_index('ix_orders_dispatch', 'delivery_orders', ['dispatch'],
                    postgresql_where=sa.text(DISPATCH_WHERE), sqlite_where=sa.text(DISPATCH_WHERE))
    op.create_index('ix_orders_erasable', 'delivery_orders', ['updated_at'],
                    postgresql_where=sa.text(ERASABLE_WHERE), sqlite_where=sa.text(ERASABLE_WHERE))
    op.drop_index('ix_orders_not_erased', table_name='delivery_orders')


def downgrade():
    op.create_index('ix_orders_not_erased', 'delivery_orders', ['updated_at'],
                    postgresql_where=sa.text(NOT_ERASED_WHERE), sqlite_where=sa.text(NOT_ERASED_WHERE))
    op.drop_index('ix_orders_erasable', table_name='delivery_orders')
    op.drop_index('ix_orders_dispatch', table_name='delivery_orders')
    op.create_index('ix_orders_dispatch', 'delivery_orders', ['dispatch'])
