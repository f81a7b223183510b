"""metric roll-ups: the agent joins the combined slice

Views on an agent together with another dimension (a team's agent, an agent by
channel) read the raw rows until now: several seconds at a million responses.
Each roll-up table gets a ``by_agent`` column; the roll-ups are emptied, so the
``refresh-metrics`` job (or ``closedloop metrics rebuild``) builds them again,
and until then every view reads the raw rows (exact, slower).

Revision ID: be6a7b8c9d0e
Revises: ad5f6a7b8c9d
Create Date: 2026-12-04 08:55:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'be6a7b8c9d0e'
down_revision = 'ad5f6a7b8c9d'
branch_labels = None
depends_on = None

TABLES = ('responses', 'sent', 'skipped', 'tickets', 'sla', 'durations', 'created')


def _empty():
    op.execute('DELETE FROM metric_rollup_state')
    for kind in TABLES:
        op.execute(f'DELETE FROM metric_rollup_{kind}')


def upgrade():
    _empty()
    for kind in TABLES:
        op.add_column(f'metric_rollup_{kind}', sa.Column('by_agent', sa.String(length=200)))


def downgrade():
    _empty()
    for kind in TABLES:
        with op.batch_alter_table(f'metric_rollup_{kind}') as batch_op:
            batch_op.drop_column('by_agent')
