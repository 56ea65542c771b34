"""Geocoding: order_locations (each order's position, with source and precision), known_places
(positions learnt from couriers' fixes at successful deliveries) and geocode_cache (the geocoding
server's answers, "not found" included).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('geocode_cache',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('query_key', sa.String(length=700), nullable=False),
    sa.Column('latitude', sa.Double(), nullable=True),
    sa.Column('longitude', sa.Double(), nullable=True),
    sa.Column('precision_m', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(latitude IS NULL) = (longitude IS NULL)', name=op.f('ck_geocode_cache_both_or_neither')),
    sa.CheckConstraint('latitude >= -90 AND latitude <= 90', name=op.f('ck_geocode_cache_latitude_range')),
    sa.CheckConstraint('longitude >= -180 AND longitude <= 180', name=op.f('ck_geocode_cache_longitude_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_geocode_cache')),
    sa.UniqueConstraint('backend', 'query_key', name=op.f('uq_geocode_cache_backend_query_key'))
    )
    op.create_table('known_places',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('address_key', sa.String(length=320), nullable=False),
    sa.Column('latitude', sa.Double(), nullable=False),
    sa.Column('longitude', sa.Double(), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('accuracy_m', sa.Double(), nullable=False),
    sa.Column('fixes', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('accuracy_m > 0', name=op.f('ck_known_places_accuracy_positive')),
    sa.CheckConstraint('latitude >= -90 AND latitude <= 90', name=op.f('ck_known_places_latitude_range')),
    sa.CheckConstraint('longitude >= -180 AND longitude <= 180', name=op.f('ck_known_places_longitude_range')),
    sa.CheckConstraint('samples > 0', name=op.f('ck_known_places_samples_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_known_places')),
    sa.UniqueConstraint('address_key', name=op.f('uq_known_places_address_key'))
    )
    op.create_table('order_locations',
    sa.Column('order_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('latitude', sa.Double(), nullable=False),
    sa.Column('longitude', sa.Double(), nullable=False),
    sa.Column('source', sa.Enum('manual', 'courier', 'nominatim', 'photon', 'commune_centroid', 'province_centroid', name='locationsource', native_enum=False, create_constraint=True, length=24), nullable=False),
    sa.Column('precision_m', sa.Integer(), nullable=False),
    sa.Column('address_key', sa.String(length=320), nullable=False),
    sa.Column('located_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('latitude >= -90 AND latitude <= 90', name=op.f('ck_order_locations_latitude_range')),
    sa.CheckConstraint('longitude >= -180 AND longitude <= 180', name=op.f('ck_order_locations_longitude_range')),
    sa.CheckConstraint('precision_m > 0', name=op.f('ck_order_locations_precision_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['delivery_orders.id'], name=op.f('fk_order_locations_order_id_delivery_orders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('order_id', name=op.f('pk_order_locations'))
    )


def downgrade():
    op.drop_table('order_locations')
    op.drop_table('known_places')
    op.drop_table('geocode_cache')
