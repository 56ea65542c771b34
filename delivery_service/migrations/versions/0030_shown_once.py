"""Temporary passwords shown once after a redirect: the administration's password reset and new
account answer with a redirect to a page that shows the password once (a reload no longer resends
the form). Between the two it waits here, sealed with a pad that only the admin's session holds, for
ten minutes at most.

Revision ID: 0030
Revises: 0029
"""
import sqlalchemy as sa
from alembic import op

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')
TS = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        'shown_once',
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('admin_id', ID, sa.ForeignKey('users.id', ondelete='CASCADE',
                                                name=op.f('fk_shown_once_admin_id_users')), nullable=False),
        sa.Column('user_id', ID, sa.ForeignKey('users.id', ondelete='CASCADE',
                                               name=op.f('fk_shown_once_user_id_users')), nullable=False),
        sa.Column('sealed', sa.LargeBinary(512), nullable=False),
        sa.Column('expires_at', TS, nullable=False),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_shown_once')),
    )
    op.create_index(op.f('ix_shown_once_expires_at'), 'shown_once', ['expires_at'])


def downgrade():
    op.drop_table('shown_once')
