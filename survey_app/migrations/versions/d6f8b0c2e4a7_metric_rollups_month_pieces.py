"""metric roll-ups: month pieces and pairs by month

A view over a year read about 60 week pieces of the combinations per population;
the roll-ups now also keep the combinations without the agent summed per month
(``dimension = '*m'``), which views by month or none read for their whole months.
The heatmap's tickets, the skipped invitations and the aspects keep the pairs of
the dimensions after the team and the channel per month (``dimension = 'a|b'``,
``day`` the month's first day). No new table or column.

The roll-up state is removed, so the ``refresh-metrics`` job (or ``closedloop
metrics rebuild``) builds every roll-up again with them; until then every view
reads the raw rows (exact, slower). Without this, the new code would read month
pieces that were never built.

Revision ID: d6f8b0c2e4a7
Revises: c5e7a9b1d3f6
Create Date: 2026-12-05 08:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd6f8b0c2e4a7'
down_revision = 'c5e7a9b1d3f6'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('DELETE FROM metric_rollup_state')


def downgrade():
    # Built again by the code before (which deletes every roll-up row first).
    op.execute('DELETE FROM metric_rollup_state')
