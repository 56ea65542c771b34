"""Business rules as settings (business_rules: the values a national admin saved over the
environment's defaults, and a version each process compares), and the webhook signing secret's
rotation with an overlap (webhook_endpoints.previous_secret, previous_secret_until).

Revision ID: 0018
Revises: 0017
"""
import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade():
    op.create_table(
        'business_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_by_user_id', ID, sa.ForeignKey('users.id', ondelete='SET NULL',
                                                          name='fk_business_rules_updated_by_user_id_users'),
                  nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_business_rules'),
    )
    # The one row, so that two first saves lock it instead of racing to insert it (version 0: nothing
    # saved, every rule is the environment's).
    op.execute("INSERT INTO business_rules (id, version, \"values\") VALUES (1, 0, '{}')")
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.add_column(sa.Column('previous_secret', sa.String(length=128), nullable=True))
        batch.add_column(sa.Column('previous_secret_until', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_endpoints') as batch:
        batch.drop_column('previous_secret_until')
        batch.drop_column('previous_secret')
    op.drop_table('business_rules')
