"""Citizen notifications: the message outbox (one message per order, event kind and round), the
scanner's cursor in the event log (starting at its current end: the past is not sent), opt-outs
keyed by a hash of the number, and the message templates per event kind, seeded with the defaults.

Revision ID: 0021
Revises: 0020
"""
import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')
TS = sa.DateTime(timezone=True)

DEFAULTS = {
    "handed": "Bưu điện: hồ sơ {dossier_code} (bưu gửi {item_id}) đã giao bưu tá để phát. "
              "Tra cứu {link} Hotline {hotline}",
    "out_for_delivery": "Bưu điện: bưu gửi {item_id} đang được phát hôm nay, dự kiến {eta}. "
                        "Vui lòng giữ máy. Hotline {hotline}",
    "failed_attempt": "Bưu điện: chưa phát được bưu gửi {item_id} ({reason}). Phát lại: {next_attempt}. "
                      "Hotline {hotline}",
    "delivered": "Bưu điện: bưu gửi {item_id} (hồ sơ {dossier_code}) đã phát thành công. "
                 "Cảm ơn Ông/Bà. Hotline {hotline}",
    "returned": "Bưu điện: bưu gửi {item_id} không phát được, đã chuyển trả nơi tiếp nhận hồ sơ. "
                "Hotline {hotline}",
}


def upgrade():
    op.create_table(
        'notification_messages',
        sa.Column('id', ID, primary_key=True),
        sa.Column('order_id', ID, sa.ForeignKey('delivery_orders.id', ondelete='CASCADE',
                                                 name=op.f('fk_notification_messages_order_id_delivery_orders')),
                  nullable=False),
        sa.Column('event_id', ID, nullable=False),
        sa.Column('kind', sa.String(24), nullable=False),
        sa.Column('round', sa.Integer, nullable=False),
        sa.Column('state', sa.String(12), nullable=False),
        sa.Column('text', sa.String(1000), nullable=False),
        sa.Column('params', sa.JSON, nullable=True),
        sa.Column('due_at', TS, nullable=False),
        sa.Column('attempts', sa.Integer, nullable=False),
        sa.Column('locked_until', TS, nullable=True),
        sa.Column('provider', sa.String(8), nullable=True),
        sa.Column('provider_ref', sa.String(64), nullable=True),
        sa.Column('last_error', sa.String(200), nullable=True),
        sa.Column('sent_at', TS, nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.UniqueConstraint('order_id', 'kind', 'round', name='uq_notification_messages_order_kind'),
    )
    op.create_index('ix_notification_messages_due', 'notification_messages', ['state', 'due_at'])
    cursor = op.create_table(
        'notification_cursor',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=False),
        sa.Column('cursor_event_id', ID, nullable=False),
        sa.Column('locked_until', TS, nullable=True),
    )
    op.create_table(
        'notification_optouts',
        sa.Column('phone_hash', sa.String(64), primary_key=True),
        sa.Column('source', sa.String(12), nullable=False),
        sa.Column('created_at', TS, nullable=False),
    )
    templates = op.create_table(
        'notification_templates',
        sa.Column('id', ID, primary_key=True),
        sa.Column('kind', sa.String(24), nullable=False, unique=True),
        sa.Column('text', sa.String(500), nullable=False),
        sa.Column('zns_template_id', sa.String(64), nullable=True),
        sa.Column('updated_by_id', ID, sa.ForeignKey('users.id', ondelete='SET NULL',
                                                      name=op.f('fk_notification_templates_updated_by_id_users')),
                  nullable=True),
        sa.Column('updated_at', TS, nullable=False),
    )
    start = op.get_bind().scalar(sa.text("SELECT COALESCE(MAX(id), 0) FROM order_events"))
    op.bulk_insert(cursor, [{"id": 1, "cursor_event_id": start, "locked_until": None}])
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(templates, [{"kind": k, "text": v, "zns_template_id": None, "updated_by_id": None,
                                "updated_at": now} for k, v in DEFAULTS.items()])


def downgrade():
    op.drop_table('notification_templates')
    op.drop_table('notification_optouts')
    op.drop_table('notification_cursor')
    op.drop_index('ix_notification_messages_due', table_name='notification_messages')
    op.drop_table('notification_messages')
