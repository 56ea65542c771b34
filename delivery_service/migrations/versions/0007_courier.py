"""The courier app: delivery_proofs (what was recorded with a delivered or picked-up event; never a
full ID number), proof_files (photos and signatures, stored in the database, attached to their
event whichever arrives first) and event_corrections (a courier's correction and the event it undid).
The event log itself is untouched.

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('delivery_proofs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.Enum('delivered', 'picked_up', name='proof_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('receiver_kind', sa.Enum('recipient', 'authorised', name='receiver_kind', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.Column('receiver_name', sa.String(length=200), nullable=True),
    sa.Column('receiver_relation', sa.String(length=100), nullable=True),
    sa.Column('id_check_kind', sa.Enum('id_last4', 'otp', 'none', name='id_check_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('id_check_result', sa.Enum('ok', 'not_verifiable', 'not_checked', name='id_check_result', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('id_last4', sa.String(length=4), nullable=True),
    sa.Column('amount_collected_vnd', sa.Integer(), nullable=True),
    sa.Column('documents', sa.JSON(), nullable=True),
    sa.Column('sealed', sa.Boolean(), nullable=True),
    sa.Column('fees_collected_vnd', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('amount_collected_vnd IS NULL OR amount_collected_vnd >= 0', name=op.f('ck_delivery_proofs_amount_positive')),
    sa.CheckConstraint('fees_collected_vnd IS NULL OR fees_collected_vnd >= 0', name=op.f('ck_delivery_proofs_fees_positive')),
    sa.CheckConstraint('id_last4 IS NULL OR length(id_last4) = 4', name=op.f('ck_delivery_proofs_only_last4')),
    sa.ForeignKeyConstraint(['event_id'], ['order_events.id'], name=op.f('fk_delivery_proofs_event_id_order_events'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], name=op.f('fk_delivery_proofs_order_id_delivery_orders'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_proofs')),
    sa.UniqueConstraint('event_id', name=op.f('uq_delivery_proofs_event_id'))
    )
    with op.batch_alter_table('delivery_proofs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_delivery_proofs_order_id'), ['order_id'], unique=False)

    op.create_table('event_corrections',
    sa.Column('event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('corrected_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['corrected_event_id'], ['order_events.id'], name=op.f('fk_event_corrections_corrected_event_id_order_events'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['event_id'], ['order_events.id'], name=op.f('fk_event_corrections_event_id_order_events'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], name=op.f('fk_event_corrections_order_id_delivery_orders'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('event_id', name=op.f('pk_event_corrections')),
    sa.UniqueConstraint('corrected_event_id', name=op.f('uq_event_corrections_corrected_event_id'))
    )
    with op.batch_alter_table('event_corrections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_corrections_order_id'), ['order_id'], unique=False)

    op.create_table('proof_files',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('client_event_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('photo', 'signature', name='proof_file_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('mime', sa.String(length=32), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('attached_event_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.CheckConstraint('size > 0', name=op.f('ck_proof_files_size_positive')),
    sa.ForeignKeyConstraint(['attached_event_id'], ['order_events.id'], name=op.f('fk_proof_files_attached_event_id_order_events'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], name=op.f('fk_proof_files_order_id_delivery_orders'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_proof_files_uploaded_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proof_files'))
    )
    with op.batch_alter_table('proof_files', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proof_files_attached_event_id'), ['attached_event_id'], unique=False)
        batch_op.create_index('ix_proof_files_order_event', ['order_id', 'client_event_id'], unique=False)



def downgrade():
    with op.batch_alter_table('proof_files', schema=None) as batch_op:
        batch_op.drop_index('ix_proof_files_order_event')
        batch_op.drop_index(batch_op.f('ix_proof_files_attached_event_id'))

    op.drop_table('proof_files')
    with op.batch_alter_table('event_corrections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_corrections_order_id'))

    op.drop_table('event_corrections')
    with op.batch_alter_table('delivery_proofs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_delivery_proofs_order_id'))

    op.drop_table('delivery_proofs')
