"""Background jobs that end: print_jobs and import_batches get heartbeat_at (the last sign of life of
the run holding the job, written at each chunk), runner (that run's token: a run that lost the job
stops at its next chunk) and attempts (how many times the job was queued; the sweeper gives up after
a few). label_prints.print_job_id names the batch a print belongs to: a batch's prints are written
with its file, once ((print_job_id, order_id) is unique).

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    for table in ('print_jobs', 'import_batches'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column('runner', sa.String(length=32), nullable=True))
            batch.add_column(sa.Column('attempts', sa.Integer(), server_default='1', nullable=False))
    with op.batch_alter_table('label_prints') as batch:
        batch.add_column(sa.Column('print_job_id', ID, nullable=True))
        batch.create_index('uq_label_prints_job_order', ['print_job_id', 'order_id'], unique=True)


def downgrade():
    with op.batch_alter_table('label_prints') as batch:
        batch.drop_index('uq_label_prints_job_order')
        batch.drop_column('print_job_id')
    for table in ('import_batches', 'print_jobs'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('attempts')
            batch.drop_column('runner')
            batch.drop_column('heartbeat_at')
