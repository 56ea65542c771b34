"""The courier of a route's run, kept on it: route_runs.courier_id (users; RESTRICT, accounts are
deactivated, never deleted). Until now a run named and counted the route's courier at the time of
looking, so a past day's run sheet printed again after the route changed couriers named one who
never worked it, and the run page of that day no longer showed the orders its courier finished.
Existing runs are filled with the route's courier at the time of this migration (what they showed
until now; who worked an older run of a route that has since changed couriers was never recorded on
it). Downgrade drops the column (runs then follow the route's courier again).

Revision ID: 0034
Revises: 0033
"""
import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('route_runs') as batch_op:
        batch_op.add_column(sa.Column('courier_id', ID, nullable=True))
        batch_op.create_foreign_key(op.f('fk_route_runs_courier_id_users'), 'users',
                                    ['courier_id'], ['id'], ondelete='RESTRICT')
    op.execute("UPDATE route_runs SET courier_id ="
               " (SELECT r.courier_id FROM postal_routes r WHERE r.id = route_runs.route_id)")


def downgrade() -> None:
    with op.batch_alter_table('route_runs') as batch_op:
        batch_op.drop_constraint(op.f('fk_route_runs_courier_id_users'), type_='foreignkey')
        batch_op.drop_column('courier_id')
