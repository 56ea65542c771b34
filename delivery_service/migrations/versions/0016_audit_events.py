"""Accounts: the audit log (audit_events) and users.session_version, bumped at log-out and password
change so that an old session cookie stops working; users.password_changed_at; the two-factor
log-in: users.totp_secret, totp_enabled_at, totp_last_step, recovery_code_hashes.

Revision ID: 0016
Revises: 0015
"""
import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_version', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('totp_secret', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('totp_enabled_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('recovery_code_hashes', sa.JSON(), nullable=True))
    op.create_table(
        'audit_events',
        sa.Column('id', ID, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor_user_id', ID, sa.ForeignKey('users.id', ondelete='SET NULL',
                                                     name='fk_audit_events_actor_user_id_users'),
                  nullable=True),
        sa.Column('actor_label', sa.String(length=100), nullable=False),
        sa.Column('action', sa.String(length=64), nullable=False),
        sa.Column('object_type', sa.String(length=64), nullable=True),
        sa.Column('object_id', sa.String(length=64), nullable=True),
        sa.Column('before', sa.JSON(), nullable=True),
        sa.Column('after', sa.JSON(), nullable=True),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_audit_events'),
    )
    op.create_index('ix_audit_events_at', 'audit_events', ['at'])
    op.create_index('ix_audit_events_actor_user_id', 'audit_events', ['actor_user_id'])
    op.create_index('ix_audit_events_action', 'audit_events', ['action'])


def downgrade():
    op.drop_table('audit_events')
    with op.batch_alter_table('users') as batch:
        for column in ('recovery_code_hashes', 'totp_last_step', 'totp_enabled_at', 'totp_secret',
                       'password_changed_at'):
            batch.drop_column(column)
        batch.drop_column('session_version')
