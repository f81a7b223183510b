"""metric roll-ups: index by month for four populations; the heatmap's template versions

A view over months with three filters reads these populations' combinations
day by day (they have no week pieces): a year with no team or channel among
its filters searched their index 9,125 times (a day × every team × every
channel). Their index now leads with the row's month, then the values, the day
last: 13 × 25 searches for a year, each reading a month of matching entries.
An expression index (the first day of the row's day's month).

The heatmap's roll-up now carries the template version as the other ticket
populations' do (a ticket's only version in "*", the tickets invited with
several once per version in "*v"), so a view with a template version no longer
reads the raw tickets. The roll-up state is removed: the next job round (or
`closedloop metrics rebuild`) builds every roll-up again; until then views read
the raw rows (exact, slower).

Revision ID: b4d6f8a0c2e4
Revises: a3c5e7f9b1d2
Create Date: 2026-12-05 02:40:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'b4d6f8a0c2e4'
down_revision = 'a3c5e7f9b1d2'
branch_labels = None
depends_on = None

TABLES = ('skipped', 'created', 'keywords', 'aspects')
VALUE_COLUMNS = [
    f'by_{name}'
    for name in (
        'team',
        'channel',
        'priority',
        'region',
        'product_line',
        'customer_tier',
        'customer_is_new',
        'template_version',
        'agent',
    )
]


def _month_start() -> sa.TextClause:
    if op.get_bind().dialect.name == 'sqlite':
        return sa.text("date(day, 'start of month')")
    return sa.text("CAST(date_trunc('month', CAST(day AS TIMESTAMP)) AS DATE)")


def upgrade():
    op.execute('DELETE FROM metric_rollup_state')
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_day_values', table_name=table)
        op.create_index(
            f'ix_{table}_dimension_month_values',
            table,
            ['dimension', _month_start(), *VALUE_COLUMNS, 'day'],
        )


def downgrade():
    op.execute('DELETE FROM metric_rollup_state')
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_month_values', table_name=table)
        op.create_index(
            f'ix_{table}_dimension_day_values', table, ['dimension', 'day', *VALUE_COLUMNS]
        )
