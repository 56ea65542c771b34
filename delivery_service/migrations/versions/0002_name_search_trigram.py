"""Name search: a trigram index on PostgreSQL so that "contains" searches do not scan the table.

SQLite has no such index; at the sizes SQLite serves, the scan is fast enough.

Revision ID: 0002
Revises: 0001
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_orders_name_key_trgm ON delivery_orders "
                   "USING gin (recipient_name_key gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_orders_name_key_trgm")
