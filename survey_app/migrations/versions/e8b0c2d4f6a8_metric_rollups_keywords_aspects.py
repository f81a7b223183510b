"""metric roll-ups: the comments' keywords and aspects, per day and slice

The dashboard's themes (the keywords of negative comments) and its aspects
(what comments say of each survey dimension) joined every keyword or aspect
row of the period to its response: a year of a million responses with a
comment on one in four took 1.5 s on SQLite. Their roll-ups hold, per day,
slice and keyword (or dimension), the responses mentioning it and how many of
them are negative (positive / negative); triggers on both tables mark the
response's instant dirty, as for the other source tables.

The roll-up state is removed, so the ``refresh-metrics`` job (or ``closedloop
metrics rebuild``) builds every roll-up again with the new ones; until then
every view reads the raw rows (exact, slower).

Revision ID: e8b0c2d4f6a8
Revises: d7a9b1c3e5f7
Create Date: 2026-12-04 23:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e8b0c2d4f6a8'
down_revision = 'd7a9b1c3e5f7'
branch_labels = None
depends_on = None

BY = ('team', 'agent', 'channel', 'priority', 'product_line', 'region', 'customer_tier',
      'customer_is_new', 'template_version')
VALUES = ('team', 'channel', 'priority', 'region', 'product_line', 'customer_tier',
          'customer_is_new', 'template_version', 'agent')
TABLES = {
    'keywords': (60, ('count', 'negative')),
    'aspects': (32, ('mentions', 'positive', 'negative')),
}
# source table → the columns whose update moves a roll-up
TRIGGERS = {
    'response_keyword': ('response_id', 'keyword'),
    'response_aspect': ('response_id', 'aspect', 'label'),
}
BUILT = 'WHEN EXISTS (SELECT 1 FROM metric_rollup_state)'


def _mark(row):
    return (
        'INSERT INTO metric_dirty (at) SELECT submitted_at FROM survey_response '
        f'WHERE id = {row}.response_id AND submitted_at IS NOT NULL;'
    )


def _create_triggers():
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, columns in TRIGGERS.items():
        watched = ', '.join(columns)
        name = f'metric_dirty_{table}'
        if postgres:
            op.execute(f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM metric_rollup_state) THEN RETURN NULL; END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN {_mark('OLD')} END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN {_mark('NEW')} END IF;
    RETURN NULL;
END $$""")
            op.execute(
                f'CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {watched} '
                f'ON {table} FOR EACH ROW EXECUTE FUNCTION {name}()'
            )
            continue
        op.execute(
            f'CREATE TRIGGER {name}_update AFTER UPDATE OF {watched} ON {table} {BUILT} '
            f'BEGIN {_mark("OLD")} {_mark("NEW")} END'
        )
        op.execute(
            f'CREATE TRIGGER {name}_insert AFTER INSERT ON {table} {BUILT} '
            f'BEGIN {_mark("NEW")} END'
        )
        op.execute(
            f'CREATE TRIGGER {name}_delete AFTER DELETE ON {table} {BUILT} '
            f'BEGIN {_mark("OLD")} END'
        )


def _drop_triggers():
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table in TRIGGERS:
        name = f'metric_dirty_{table}'
        if postgres:
            op.execute(f'DROP TRIGGER IF EXISTS {name} ON {table}')
            op.execute(f'DROP FUNCTION IF EXISTS {name}()')
        else:
            for event in ('update', 'insert', 'delete'):
                op.execute(f'DROP TRIGGER IF EXISTS {name}_{event}')


def upgrade():
    op.execute('DELETE FROM metric_rollup_state')
    for kind, (extra, names) in TABLES.items():
        table = f'metric_rollup_{kind}'
        op.create_table(
            table,
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('day', sa.Date(), nullable=False),
            sa.Column('dimension', sa.String(length=32), nullable=False),
            sa.Column('value', sa.String(length=200), nullable=True),
            sa.Column('extra', sa.String(length=extra), nullable=True),
            *(sa.Column(f'by_{d}', sa.String(length=200), nullable=True) for d in BY),
            *(sa.Column(name, sa.BigInteger(), nullable=False) for name in names),
            sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')),
        )
        op.create_index(
            f'ix_{table}_dimension_day_values',
            table,
            ['dimension', 'day', *(f'by_{name}' for name in VALUES)],
        )
    _create_triggers()


def downgrade():
    _drop_triggers()
    for kind in reversed(list(TABLES)):
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_day_values', table_name=table)
        op.drop_table(table)
