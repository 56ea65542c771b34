"""Orders get an optional weight: delivery_orders.weight_g (whole grams, 1..30000), printed on the label.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery_orders') as batch:
        batch.add_column(sa.Column('weight_g', sa.Integer(), nullable=True))
        batch.create_check_constraint(op.f('ck_delivery_orders_weight_range'),
                                      'weight_g IS NULL OR (weight_g >= 1 AND weight_g <= 30000)')


def downgrade():
    with op.batch_alter_table('delivery_orders') as batch:
        batch.drop_constraint(op.f('ck_delivery_orders_weight_range'), type_='check')
        batch.drop_column('weight_g')
