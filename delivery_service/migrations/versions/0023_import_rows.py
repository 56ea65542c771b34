"""Import results in a table of their own: import_rows (batch, line, status, item id, errors), one
row per row of the file, written with the chunk that handled it, instead of the whole list rewritten
as one JSON value on import_batches at every chunk (work growing with the square of the rows).
The results of existing batches are copied over; import_batches.results is dropped.

Revision ID: 0023
Revises: 0022
"""
import json

import sqlalchemy as sa
from alembic import op


revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade():
    rows = op.create_table(
        'import_rows',
        sa.Column('batch_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('line', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('item_id', sa.String(length=13), nullable=True),
        sa.Column('errors', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['import_batches.id'],
                                name=op.f('fk_import_rows_batch_id_import_batches'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('batch_id', 'line', name=op.f('pk_import_rows')),
    )
    conn = op.get_bind()
    batches = sa.table('import_batches', sa.column('id', sa.Integer), sa.column('results', sa.JSON))
    for batch_id, results in conn.execute(sa.select(batches.c.id, batches.c.results)).all():
        if isinstance(results, str):
            results = json.loads(results)
        seen = set()
        values = []
        for r in results or []:
            if r.get('line') in seen:
                continue
            seen.add(r.get('line'))
            values.append({'batch_id': batch_id, 'line': r['line'], 'status': r['status'],
                           'item_id': r.get('item_id'), 'errors': r.get('errors') or None})
        if values:
            conn.execute(rows.insert(), values)
    # import_batches is not named by the event log's triggers (0019): SQLite (≥ 3.35) drops the column
    # in place, no batch rebuild.
    op.execute('ALTER TABLE import_batches DROP COLUMN results')


def downgrade():
    op.add_column('import_batches', sa.Column('results', sa.JSON(), nullable=True))
    conn = op.get_bind()
    rows = sa.table('import_rows', sa.column('batch_id', sa.Integer), sa.column('line', sa.Integer),
                    sa.column('status', sa.String), sa.column('item_id', sa.String),
                    sa.column('errors', sa.JSON))
    batches = sa.table('import_batches', sa.column('id', sa.Integer), sa.column('results', sa.JSON))
    results: dict[int, list] = {}
    for batch_id, line, status, item_id, errors in conn.execute(
            sa.select(rows.c.batch_id, rows.c.line, rows.c.status, rows.c.item_id, rows.c.errors)
            .order_by(rows.c.batch_id, rows.c.line)):
        results.setdefault(batch_id, []).append({'line': line, 'status': status, 'item_id': item_id,
                                                 'errors': errors or {}})
    for batch_id, values in results.items():
        conn.execute(batches.update().where(batches.c.id == batch_id).values(results=values))
    op.drop_table('import_rows')
