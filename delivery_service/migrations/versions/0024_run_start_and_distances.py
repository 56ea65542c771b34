"""Runs remember where their distances came from and where they started: route_runs.distances
("road" or "straight_line", as the run was sequenced; NULL for runs sequenced before) and
route_runs.start_at (the moment of the courier's last known position a run was re-sequenced from
during its day; NULL: it starts at the post office at the start of the shift).

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
from alembic import op



revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('route_runs', sa.Column('distances', sa.String(length=16), nullable=True))
    op.add_column('route_runs', sa.Column('start_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('route_runs') as batch:
        batch.drop_column('start_at')
        batch.drop_column('distances')
