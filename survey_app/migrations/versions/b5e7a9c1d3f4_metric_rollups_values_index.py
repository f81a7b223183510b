"""metric roll-ups: one index with every value after the day

A view with three filters or more (a region, a priority and a product line) read
every combination row of its period and rejected most; with the values after the
day in the index, they are rejected in the index and only the matching rows are
read. The index replaces (dimension, day), which is its prefix, and the team's and
the channel's indexes, which it serves as well (and a first build no longer
spends the time to build them).

Revision ID: b5e7a9c1d3f4
Revises: a4d6f8b0c2e3
Create Date: 2026-12-04 15:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b5e7a9c1d3f4'
down_revision = 'a4d6f8b0c2e3'
branch_labels = None
depends_on = None

TABLES = ('responses', 'sent', 'skipped', 'tickets', 'sla', 'durations', 'created')
VALUES = ('priority', 'region', 'product_line', 'customer_tier', 'customer_is_new',
          'template_version', 'channel', 'team', 'agent')
REPLACED = {
    'dimension_day': ['dimension', 'day'],
    'dimension_team_day': ['dimension', 'by_team', 'day'],
    'dimension_channel_day': ['dimension', 'by_channel', 'day'],
}


def upgrade():
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        for name in REPLACED:
            op.drop_index(f'ix_{table}_{name}', table_name=table)
        op.create_index(
            f'ix_{table}_dimension_day_values',
            table,
            ['dimension', 'day', *(f'by_{name}' for name in VALUES)],
        )


def downgrade():
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_day_values', table_name=table)
        for name, columns in REPLACED.items():
            op.create_index(f'ix_{table}_{name}', table, columns)
