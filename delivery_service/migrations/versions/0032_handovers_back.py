"""Every handover of an item once, not only the counter's to a courier: manifest_handovers gets a step
(to_courier, dossier: a picked-up dossier handed to the agency or to the counter for it, return: a
result returned after the last failed attempt handed back), in its key (order_id, step, route_id).
Filled from the existing courier_to_agency and courier_to_counter manifests, the first manifest of
each item, step and route counting (later duplicates stay listed as printed); the step of an item of
both directions is "return" when it had been returned by the manifest's time, else "dossier".
Downgrade keeps the counter-to-courier handovers only.

Revision ID: 0032
Revises: 0031
"""
import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('manifest_handovers') as batch_op:
        batch_op.add_column(sa.Column('step', sa.String(16), nullable=False, server_default='to_courier'))
    with op.batch_alter_table('manifest_handovers') as batch_op:
        batch_op.alter_column('step', server_default=None)
        batch_op.drop_constraint(op.f('pk_manifest_handovers'), type_='primary')
        batch_op.create_primary_key(op.f('pk_manifest_handovers'), ['order_id', 'step', 'route_id'])
    op.execute(
        "INSERT INTO manifest_handovers (order_id, step, route_id, manifest_id) "
        "SELECT order_id, step, route_id, MIN(manifest_id) FROM ("
        " SELECT mi.order_id AS order_id, m.id AS manifest_id,"
        "  COALESCE(m.route_id, o.route_id) AS route_id,"
        "  CASE WHEN o.direction = 'dossier_to_agency' THEN 'dossier'"
        "   WHEN o.direction = 'result_to_citizen' THEN 'return'"
        "   WHEN EXISTS (SELECT 1 FROM order_events e WHERE e.order_id = o.id"
        "     AND e.status_to = 'returned_to_agency' AND e.server_time <= m.created_at) THEN 'return'"
        "   ELSE 'dossier' END AS step"
        " FROM manifest_items mi JOIN manifests m ON m.id = mi.manifest_id"
        " JOIN delivery_orders o ON o.id = mi.order_id"
        " WHERE m.kind IN ('courier_to_agency', 'courier_to_counter')) back"
        " WHERE route_id IS NOT NULL GROUP BY order_id, step, route_id")


def downgrade():
    op.execute("DELETE FROM manifest_handovers WHERE step <> 'to_courier'")
    with op.batch_alter_table('manifest_handovers') as batch_op:
        batch_op.drop_constraint(op.f('pk_manifest_handovers'), type_='primary')
        batch_op.create_primary_key(op.f('pk_manifest_handovers'), ['order_id', 'route_id'])
    with op.batch_alter_table('manifest_handovers') as batch_op:
        batch_op.drop_column('step')
