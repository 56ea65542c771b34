"""Search without diacritics: delivery_orders.recipient_search_key, the recipient's name in lower case
without diacritics (đ → d), kept by the service (delivery_service.vietnamese.search_key) and filled
here for existing rows; a trigram index on PostgreSQL, as 0002 made for recipient_name_key.
Also print_jobs.public_base_url: the address the asking request reached the service at, for the
tracking links a worker prints when PUBLIC_BASE_URL is not set (tracking.links).

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

from delivery_service.vietnamese import search_key


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

BATCH = 2000


def upgrade():
    with op.batch_alter_table('print_jobs') as batch:
        batch.add_column(sa.Column('public_base_url', sa.String(length=255), nullable=True))
    with op.batch_alter_table('delivery_orders') as batch:
        batch.add_column(sa.Column('recipient_search_key', sa.String(length=200), nullable=True))
    conn = op.get_bind()
    orders = sa.table('delivery_orders', sa.column('id', sa.Integer), sa.column('recipient_name', sa.String),
                      sa.column('recipient_search_key', sa.String))
    last = 0
    while True:
        rows = conn.execute(sa.select(orders.c.id, orders.c.recipient_name).where(orders.c.id > last)
                            .order_by(orders.c.id).limit(BATCH)).all()
        if not rows:
            break
        conn.execute(orders.update().where(orders.c.id == sa.bindparam('oid'))
                     .values(recipient_search_key=sa.bindparam('key')),
                     [{'oid': r.id, 'key': search_key(r.recipient_name)} for r in rows])
        last = rows[-1].id
    with op.batch_alter_table('delivery_orders') as batch:
        batch.alter_column('recipient_search_key', existing_type=sa.String(length=200), nullable=False)
    if conn.dialect.name == 'postgresql':
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_orders_search_key_trgm ON delivery_orders "
                   "USING gin (recipient_search_key gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_orders_search_key_trgm")
    with op.batch_alter_table('delivery_orders') as batch:
        batch.drop_column('recipient_search_key')
    with op.batch_alter_table('print_jobs') as batch:
        batch.drop_column('public_base_url')
