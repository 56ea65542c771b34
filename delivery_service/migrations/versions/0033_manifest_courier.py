"""The courier who signs a manifest, kept on it: manifests.courier_id (users; RESTRICT, accounts are
deactivated, never deleted). Until now the PDF named the manifest's maker if a courier, else the
route's courier at the time of printing, so a manifest printed again after the route changed couriers
named one who never signed for the bag. Existing manifests are filled with that same rule: the maker if
a courier, else the route's courier at the time of this migration (what they printed until now; who
signed an older manifest of a route that has since changed couriers was never recorded on it); null
where the route has no courier or is gone. Downgrade drops the column (the PDF then names the route's
courier again).

Revision ID: 0033
Revises: 0032
"""
import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('manifests') as batch_op:
        batch_op.add_column(sa.Column('courier_id', ID, nullable=True))
        batch_op.create_foreign_key(op.f('fk_manifests_courier_id_users'), 'users',
                                    ['courier_id'], ['id'], ondelete='RESTRICT')
    op.execute(
        "UPDATE manifests SET courier_id = COALESCE("
        " (SELECT u.id FROM users u WHERE u.id = manifests.created_by_id AND u.role = 'courier'),"
        " (SELECT r.courier_id FROM postal_routes r WHERE r.id = manifests.route_id))")


def downgrade() -> None:
    with op.batch_alter_table('manifests') as batch_op:
        batch_op.drop_constraint(op.f('fk_manifests_courier_id_users'), type_='foreignkey')
        batch_op.drop_column('courier_id')
