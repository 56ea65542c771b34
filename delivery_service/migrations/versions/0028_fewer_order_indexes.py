"""Three index entries fewer for every new order: ix_delivery_orders_due_date goes (no query reads
due_date through it: the open and overdue counts read it from ix_orders_open_created);
ix_orders_route_status (route_id, status) and ix_orders_route_run_date (route_id, run_date) become
ix_orders_route_run (route_id, run_date, status), which serves the day's loads and the privacy
run look-up as before, a route's run (status checked in the index) and the route foreign key's
ON DELETE SET NULL; and on SQLite ix_orders_phone goes, since its planner never uses it (the order
search and the privacy export's phone look-up are ORs with a term no index serves: a table scan
either way); PostgreSQL keeps it for the search's bitmap OR. On PostgreSQL the trigram index of
recipient_name_key (migration 0002) goes too: the search reads recipient_search_key since migration
0015 (its own trigram index), and nothing reads recipient_name_key, while every new order wrote a GIN
entry per trigram of the name into it.

Revision ID: 0028
Revises: 0027
"""
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_orders_route_run', 'delivery_orders', ['route_id', 'run_date', 'status'])
    op.drop_index('ix_orders_route_run_date', table_name='delivery_orders')
    op.drop_index('ix_orders_route_status', table_name='delivery_orders')
    op.drop_index('ix_delivery_orders_due_date', table_name='delivery_orders')
    if op.get_bind().dialect.name == 'sqlite':
        op.drop_index('ix_orders_phone', table_name='delivery_orders')
    else:
        op.execute("DROP INDEX IF EXISTS ix_orders_name_key_trgm")


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        op.create_index('ix_orders_phone', 'delivery_orders', ['recipient_phone'])
    else:
        op.execute("CREATE INDEX ix_orders_name_key_trgm ON delivery_orders "
                   "USING gin (recipient_name_key gin_trgm_ops)")
    op.create_index('ix_delivery_orders_due_date', 'delivery_orders', ['due_date'])
    op.create_index('ix_orders_route_status', 'delivery_orders', ['route_id', 'status'])
    op.create_index('ix_orders_route_run_date', 'delivery_orders', ['route_id', 'run_date'])
    op.drop_index('ix_orders_route_run', table_name='delivery_orders')
