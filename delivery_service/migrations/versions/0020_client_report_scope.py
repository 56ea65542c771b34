"""API clients' reporting scope: api_clients.report_unit_id, the administrative unit (a 2025 province,
a former district or a commune) whose figures the client may read from GET /api/v1/reports/figures,
as a district officer of that unit would (a province's dashboard, the public-service portal). Null:
its counter's figures, as before.

Revision ID: 0020
Revises: 0019
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, 'sqlite')


def upgrade():
    with op.batch_alter_table('api_clients') as batch_op:
        batch_op.add_column(sa.Column('report_unit_id', ID, nullable=True))
        batch_op.create_foreign_key(op.f('fk_api_clients_report_unit_id_admin_units'), 'admin_units',
                                    ['report_unit_id'], ['id'], ondelete='RESTRICT')


def downgrade():
    with op.batch_alter_table('api_clients') as batch_op:
        batch_op.drop_constraint(op.f('fk_api_clients_report_unit_id_admin_units'), type_='foreignkey')
        batch_op.drop_column('report_unit_id')
