"""metric roll-ups: on PostgreSQL, a month-led index of the combinations

The populations with week pieces (responses, invitations, tickets, SLA facts,
durations) searched their combinations day by day. A view over a year by agent
with filters made 365 x 25 searches a read, each a descent of PostgreSQL's
B-tree; by month it makes 13 x 25. This adds, on PostgreSQL only, an index led
by the month of the combinations' rows (``dimension`` ``*`` and ``*v``). SQLite
keeps reading day by day (its searches are cheap). No data changes: the
roll-ups stay built.

Revision ID: e7a9c1d3f5b8
Revises: d6f8b0c2e4a7
Create Date: 2026-12-05 12:30:00.000000

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = 'e7a9c1d3f5b8'
down_revision = 'd6f8b0c2e4a7'
branch_labels = None
depends_on = None

KINDS = ('responses', 'sent', 'tickets', 'sla', 'durations')
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


def upgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    month = sa.text("CAST(date_trunc('month', CAST(day AS TIMESTAMP)) AS DATE)")
    for kind in KINDS:
        table = f'metric_rollup_{kind}'
        op.create_index(
            f'ix_{table}_dimension_month_values',
            table,
            ['dimension', month, *VALUE_COLUMNS, 'day'],
            postgresql_where=sa.text("dimension IN ('*', '*v')"),
        )


def downgrade():
    if op.get_bind().dialect.name != 'postgresql':
        return
    for kind in KINDS:
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_month_values', table_name=table)
