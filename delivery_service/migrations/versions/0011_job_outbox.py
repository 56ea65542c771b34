"""The job outbox: follow-up work recorded in the transaction of the write that asks for it, then
run or handed to rq after that commit (delivery_service/outbox.py).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)
WAITING = "state IN ('pending', 'handed')"
OPEN = "state IN ('pending', 'handed', 'running')"


def upgrade():
    op.create_table(
        'job_outbox',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('func_path', sa.String(length=200), nullable=False),
        sa.Column('args', sa.JSON(), nullable=False),
        sa.Column('queue', sa.String(length=16), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('dedupe_key', sa.String(length=200), nullable=True),
        sa.Column('timeout_s', sa.Integer(), nullable=False),
        sa.Column('on_failure', sa.String(length=200), nullable=True),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('requests', sa.Integer(), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('due_at', UTC, nullable=False),
        sa.Column('claimed_until', UTC, nullable=True),
        sa.Column('finished_at', UTC, nullable=True),
        sa.Column('error', sa.String(length=200), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'handed', 'running', 'done', 'failed', 'superseded')",
                           name=op.f('ck_job_outbox_state')),
        sa.CheckConstraint("queue IN ('interactive', 'background')", name=op.f('ck_job_outbox_queue')),
        sa.CheckConstraint('attempt >= 1', name=op.f('ck_job_outbox_attempt_positive')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_job_outbox')),
    )
    op.create_index('uq_job_outbox_waiting_key', 'job_outbox', ['dedupe_key'], unique=True,
                    sqlite_where=sa.text(WAITING), postgresql_where=sa.text(WAITING))
    op.create_index('ix_job_outbox_open', 'job_outbox', ['state', 'due_at'],
                    sqlite_where=sa.text(OPEN), postgresql_where=sa.text(OPEN))


def downgrade():
    op.drop_index('ix_job_outbox_open', table_name='job_outbox')
    op.drop_index('uq_job_outbox_waiting_key', table_name='job_outbox')
    op.drop_table('job_outbox')
