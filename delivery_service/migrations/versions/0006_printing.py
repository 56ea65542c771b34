"""Printing: label_prints (every label printed, reprints counted), print_jobs (big batches rendered by
a worker, kept for download), manifests and manifest_items (handover manifests), and each counter's
label defaults (format, size, route required).

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('print_jobs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('counter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('format', sa.Enum('pdf', 'zpl', name='print_job_format', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('size', sa.String(length=16), nullable=False),
    sa.Column('order_ids', sa.JSON(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'running', 'done', 'failed', name='print_job_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_print_jobs_client_id_api_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'], name=op.f('fk_print_jobs_counter_id_counters'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_print_jobs_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_print_jobs'))
    )
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_print_jobs_counter_id'), ['counter_id'], unique=False)

    op.create_table('manifests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.Enum('counter_to_courier', 'courier_to_agency', 'courier_to_counter', name='manifest_kind', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('counter_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('note', sa.String(length=300), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_manifests_client_id_api_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['counter_id'], ['counters.id'], name=op.f('fk_manifests_counter_id_counters'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_manifests_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['route_id'], ['postal_routes.id'], name=op.f('fk_manifests_route_id_postal_routes'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_manifests')),
    sa.UniqueConstraint('code', name=op.f('uq_manifests_code'))
    )
    with op.batch_alter_table('manifests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_manifests_counter_id'), ['counter_id'], unique=False)

    op.create_table('label_prints',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('printed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_label', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('client_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('format', sa.Enum('pdf', 'zpl', name='label_format', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('size', sa.String(length=16), nullable=False),
    sa.Column('copy_no', sa.Integer(), nullable=False),
    sa.Column('route_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('stop_no', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=400), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['api_clients.id'], name=op.f('fk_label_prints_client_id_api_clients'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], name=op.f('fk_label_prints_order_id_delivery_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_label_prints_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_prints'))
    )
    with op.batch_alter_table('label_prints', schema=None) as batch_op:
        batch_op.create_index('ix_label_prints_order', ['order_id', 'id'], unique=False)

    op.create_table('manifest_items',
    sa.Column('manifest_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['manifest_id'], ['manifests.id'], name=op.f('fk_manifest_items_manifest_id_manifests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], name=op.f('fk_manifest_items_order_id_delivery_orders'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('manifest_id', 'order_id', name=op.f('pk_manifest_items'))
    )
    op.add_column('counters', sa.Column('label_format', sa.String(length=8), server_default='pdf', nullable=False))
    op.add_column('counters', sa.Column('label_size', sa.String(length=16), server_default='100x150', nullable=False))
    op.add_column('counters', sa.Column('label_requires_route', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade():
    op.drop_column('counters', 'label_requires_route')
    op.drop_column('counters', 'label_size')
    op.drop_column('counters', 'label_format')

    op.drop_table('manifest_items')
    with op.batch_alter_table('label_prints', schema=None) as batch_op:
        batch_op.drop_index('ix_label_prints_order')

    op.drop_table('label_prints')
    with op.batch_alter_table('manifests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_manifests_counter_id'))

    op.drop_table('manifests')
    with op.batch_alter_table('print_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_print_jobs_counter_id'))

    op.drop_table('print_jobs')
