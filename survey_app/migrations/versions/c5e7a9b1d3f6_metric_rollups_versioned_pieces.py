"""metric roll-ups: week pieces of the tickets' combinations with a template version

The ticket populations (tickets, SLA facts, durations) gain the slice "*wv":
their combinations that count under a template version ("*" rows with one, and
every "*v" row), summed per week piece like "*w". A view of a template version
over months reads them instead of both slices' rows of every day. No schema
change: the roll-up state is removed, so the next job round (or `closedloop
metrics rebuild`) builds every roll-up again; until then views read the raw
rows (exact, slower).

Revision ID: c5e7a9b1d3f6
Revises: b4d6f8a0c2e4
Create Date: 2026-12-05 05:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'c5e7a9b1d3f6'
down_revision = 'b4d6f8a0c2e4'
branch_labels = None
depends_on = None


def upgrade():
    op.execute('DELETE FROM metric_rollup_state')


def downgrade():
    op.execute('DELETE FROM metric_rollup_state')
