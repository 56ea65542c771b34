"""Personal data: delivery_orders.personal_data_erased_at, the access log (personal_data_access), the
daily erasure runs (privacy_runs), and the event log's guard narrowed to one redaction: an event of
an erased order may have its free-text note replaced and its position cleared, nothing else
(docs/privacy.md).

Revision ID: 0019
Revises: 0018
"""
import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')
PLACEHOLDER = '(đã xoá / erased)'
# Every column of order_events that the redaction must leave as it was.
KEPT = ('id', 'order_id', 'client_event_id', 'status_from', 'status_to', 'actor_user_id', 'actor_client_id',
        'actor_label', 'device_time', 'server_time', 'reason', 'route_id')
ERASED = ("EXISTS (SELECT 1 FROM delivery_orders o WHERE o.id = NEW.order_id "
          "AND o.personal_data_erased_at IS NOT NULL)")


def _redaction(same: str) -> str:
    """SQL true when an UPDATE only redacts an erased order's event."""
    kept = ' AND '.join(same.format(c=c) for c in KEPT)
    return (f"{kept} AND (NEW.note IS NULL OR NEW.note = '{PLACEHOLDER}') "
            f"AND NEW.latitude IS NULL AND NEW.longitude IS NULL AND NEW.accuracy_m IS NULL AND {ERASED}")


def upgrade():
    with op.batch_alter_table('delivery_orders') as batch:
        batch.add_column(sa.Column('personal_data_erased_at', sa.DateTime(timezone=True), nullable=True))
    # The daily erasure looks for closed orders not yet erased, by their last change.
    op.create_index('ix_orders_not_erased', 'delivery_orders', ['updated_at'],
                    postgresql_where=sa.text('personal_data_erased_at IS NULL'),
                    sqlite_where=sa.text('personal_data_erased_at IS NULL'))
    op.create_table(
        'personal_data_access',
        sa.Column('id', ID, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('user_id', ID, sa.ForeignKey('users.id', ondelete='SET NULL',
                                               name='fk_personal_data_access_user_id_users'), nullable=True),
        sa.Column('client_id', ID, sa.ForeignKey('api_clients.id', ondelete='SET NULL',
                                                 name='fk_personal_data_access_client_id_api_clients'),
                  nullable=True),
        sa.Column('actor_label', sa.String(length=100), nullable=False),
        # No foreign key: the log is history, and outlives nothing it names.
        sa.Column('order_id', ID, nullable=False),
        sa.Column('what', sa.String(length=24), nullable=False),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_personal_data_access'),
    )
    op.create_index('ix_personal_data_access_order', 'personal_data_access', ['order_id', 'at'])
    op.create_index('ix_personal_data_access_user', 'personal_data_access', ['user_id', 'at'])
    op.create_index('ix_personal_data_access_at', 'personal_data_access', ['at'])
    op.create_table(
        'privacy_runs',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('erased', sa.Integer(), nullable=False, server_default='0'),
        sa.PrimaryKeyConstraint('day', name='pk_privacy_runs'),
    )
    conn = op.get_bind()
    if conn.dialect.name == 'postgresql':
        same = '(NEW.{c} IS NOT DISTINCT FROM OLD.{c})'
        op.execute(f"""
            CREATE OR REPLACE FUNCTION order_events_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND {_redaction(same)} THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION 'order_events is append-only';
            END $$ LANGUAGE plpgsql""")
    else:
        same = '(NEW.{c} IS OLD.{c})'
        op.execute("DROP TRIGGER IF EXISTS order_events_no_update")
        op.execute(f"""
            CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
            WHEN NOT ({_redaction(same)})
            BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END""")


def downgrade():
    conn = op.get_bind()
    if conn.dialect.name == 'postgresql':
        op.execute("""
            CREATE OR REPLACE FUNCTION order_events_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'order_events is append-only';
            END $$ LANGUAGE plpgsql""")
    else:
        op.execute("DROP TRIGGER IF EXISTS order_events_no_update")
        op.execute("""
            CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
            BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END""")
    op.drop_table('privacy_runs')
    op.drop_table('personal_data_access')
    op.drop_index('ix_orders_not_erased', table_name='delivery_orders')
    with op.batch_alter_table('delivery_orders') as batch:
        batch.drop_column('personal_data_erased_at')
