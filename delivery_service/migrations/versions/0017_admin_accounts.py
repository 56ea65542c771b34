"""Administration of accounts: users.must_change_password, set when an administrator creates an
account or resets its password (the user must choose their own at the next log-in). Locks need no
column: failed log-ins are counted by the rate limiter per user name, and unlocking clears that count.

Revision ID: 0017
Revises: 0016
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('users') as batch:
        batch.drop_column('must_change_password')
