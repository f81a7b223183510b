"""metric roll-ups: the values index leads with the team; a team-and-agent slice

A read of the combinations seeks day by day to the entries its filters accept,
by equality on the index's leading columns (analysis/metrics/rollup_read.py). The
team and the channel are the filters a view of the combinations has most (a
team's agents, a team on one channel with a third filter); after them the
dimensions with the fewest values, whose values a read may name to reach a
filtered column behind them. The agent, with the most values, stays last.

The roll-ups also get a slice for the pair of the team and the agent (a team's
agents): the roll-ups are emptied, so the ``refresh-metrics`` job (or
``closedloop metrics rebuild``) builds them again with it; until then every view
reads the raw rows (exact, slower).

Revision ID: c6f8a0b2d4e6
Revises: b5e7a9c1d3f4
Create Date: 2026-12-04 21:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c6f8a0b2d4e6'
down_revision = 'b5e7a9c1d3f4'
branch_labels = None
depends_on = None

TABLES = ('responses', 'sent', 'skipped', 'tickets', 'sla', 'durations', 'created')
BEFORE = ('priority', 'region', 'product_line', 'customer_tier', 'customer_is_new',
          'template_version', 'channel', 'team', 'agent')
AFTER = ('team', 'channel', 'priority', 'region', 'product_line', 'customer_tier',
         'customer_is_new', 'template_version', 'agent')


def _index(values):
    op.execute('DELETE FROM metric_rollup_state')
    for kind in TABLES:
        op.execute(f'DELETE FROM metric_rollup_{kind}')
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_day_values', table_name=table)
        op.create_index(
            f'ix_{table}_dimension_day_values',
            table,
            ['dimension', 'day', *(f'by_{name}' for name in values)],
        )


def upgrade():
    _index(AFTER)


def downgrade():
    _index(BEFORE)
