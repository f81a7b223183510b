"""metric roll-ups: week pieces of the combinations

A view over months with three filters (a year of one region, one priority,
one product line) read the day's combinations of every day: about one row per
response, 18,000 for a year at a million responses. The roll-ups now keep,
in each table, the combinations without the agent summed per week piece (the
days of one week within one month, ``dimension = '*w'``), which such a view
reads for the whole pieces of its period. No new table or column.

The roll-up state is removed, so the ``refresh-metrics`` job (or ``closedloop
metrics rebuild``) builds every roll-up again with the pieces; until then
every view reads the raw rows (exact, slower).

Revision ID: a3c5e7f9b1d2
Revises: e8b0c2d4f6a8
Create Date: 2026-12-04 23:55:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a3c5e7f9b1d2'
down_revision = 'e8b0c2d4f6a8'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('DELETE FROM metric_rollup_state')


def downgrade():
    # Built again by the code before the pieces (which deletes every roll-up row first).
    op.execute('DELETE FROM metric_rollup_state')
