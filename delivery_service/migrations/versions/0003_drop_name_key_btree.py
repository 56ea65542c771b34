"""Drop the B-tree index on recipient_name_key: name search is a "contains" match, which a B-tree
cannot serve (PostgreSQL has the trigram index of 0002), and every order paid for writing it.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("delivery_orders") as batch_op:
        batch_op.drop_index("ix_orders_name_key")


def downgrade():
    with op.batch_alter_table("delivery_orders") as batch_op:
        batch_op.create_index("ix_orders_name_key", ["recipient_name_key"], unique=False)
