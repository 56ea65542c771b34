"""One counter-to-courier handover per item and route: manifest_handovers records, for each order
handed to a route's courier, the manifest that did it; its primary key (order_id, route_id) refuses a
second one, also when two requests race. Filled from the existing counter_to_courier manifests, the
first manifest of each item and route counting (later duplicates stay listed on their manifests, as
printed).

Revision ID: 0031
Revises: 0030
"""
import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade():
    op.create_table(
        'manifest_handovers',
        sa.Column('order_id', ID, nullable=False),
        sa.Column('route_id', ID, nullable=False),
        sa.Column('manifest_id', ID, nullable=False),
        sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], ondelete='CASCADE',
                                name=op.f('fk_manifest_handovers_order_id_delivery_orders')),
        sa.ForeignKeyConstraint(['manifest_id'], ['manifests.id'], ondelete='CASCADE',
                                name=op.f('fk_manifest_handovers_manifest_id_manifests')),
        sa.PrimaryKeyConstraint('order_id', 'route_id', name=op.f('pk_manifest_handovers')),
    )
    op.create_index(op.f('ix_manifest_handovers_manifest_id'), 'manifest_handovers', ['manifest_id'])
    op.execute(
        "INSERT INTO manifest_handovers (order_id, route_id, manifest_id) "
        "SELECT mi.order_id, m.route_id, MIN(m.id) FROM manifest_items mi "
        "JOIN manifests m ON m.id = mi.manifest_id "
        "WHERE m.kind = 'counter_to_courier' AND m.route_id IS NOT NULL "
        "GROUP BY mi.order_id, m.route_id")


def downgrade():
    op.drop_index(op.f('ix_manifest_handovers_manifest_id'), table_name='manifest_handovers')
    op.drop_table('manifest_handovers')
