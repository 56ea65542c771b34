"""Idempotency bound to the request: delivery_orders.request_digest, the SHA-256 of the validated body
of the create call that stored the order. A retry must carry the same body; the same Idempotency-Key
(or dossier) with another body is refused instead of answered with the stored order.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('delivery_orders') as batch:
        batch.add_column(sa.Column('request_digest', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('delivery_orders') as batch:
        batch.drop_column('request_digest')
