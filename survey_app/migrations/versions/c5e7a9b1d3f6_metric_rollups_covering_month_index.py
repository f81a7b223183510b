"""metric roll-ups: the month-led indexes cover their reads

The four populations searched month by month (skipped invitations, the
heatmap's tickets, keywords, aspects) sum their extra key and one to three
aggregates over index entries picked from all over a period. Their index now
ends with those columns, so a read sums them in the index instead of fetching
each matching row from the table.

Revision ID: c5e7a9b1d3f6
Revises: b4d6f8a0c2e4
Create Date: 2026-12-05 05:55:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e7a9b1d3f6'
down_revision = 'b4d6f8a0c2e4'
branch_labels = None
depends_on = None

AGGREGATES = {
    'skipped': ['count'],
    'created': ['n', 'seconds', 'elapsed'],
    'keywords': ['count', 'negative'],
    'aspects': ['mentions', 'positive', 'negative'],
}
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


def _index(kind: str, covering: bool) -> None:
    table = f'metric_rollup_{kind}'
    name = f'ix_{table}_dimension_month_values'
    op.drop_index(name, table_name=table)
    more = ['extra', *AGGREGATES[kind]] if covering else []
    op.create_index(name, table, ['dimension', _month_start(), *VALUE_COLUMNS, 'day', *more])


def upgrade():
    for kind in AGGREGATES:
        _index(kind, covering=True)


def downgrade():
    for kind in AGGREGATES:
        _index(kind, covering=False)
