"""metric roll-ups: a slice for every pair of dimensions but the agent

Views that filter and group by two dimensions (a template version in one team, one
channel by template version) read every combination row of their period until
now: 0.6-1 s at a million responses. The roll-ups get a slice per pair of
dimensions (``dimension = 'team|channel'``, the values in the ``by_`` columns):
a few rows per day. No column changes; the roll-ups are emptied, so the
``refresh-metrics`` job (or ``closedloop metrics rebuild``) builds them again with
the pairs; until then every view reads the raw rows (exact, slower).

Revision ID: a4d6f8b0c2e3
Revises: f3c5d7e9a1b2
Create Date: 2026-12-04 13:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'a4d6f8b0c2e3'
down_revision = 'f3c5d7e9a1b2'
branch_labels = None
depends_on = None

TABLES = ('responses', 'sent', 'skipped', 'tickets', 'sla', 'durations', 'created')


def _empty():
    op.execute('DELETE FROM metric_rollup_state')
    for kind in TABLES:
        op.execute(f'DELETE FROM metric_rollup_{kind}')


def upgrade():
    _empty()


def downgrade():
    _empty()
