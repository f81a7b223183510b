"""metric roll-ups: the template version joins the combinations

Views on a template version together with another dimension (a version's answers in
one team, by channel) read the raw rows until now: seconds at a million responses.
Each roll-up table gets a ``by_template_version`` column: responses and invitations
carry it in their combined slice, the ticket populations in a slice of their own
(``*v``). The roll-ups are emptied, so the ``refresh-metrics`` job (or
``closedloop metrics rebuild``) builds them again; until then every view reads the
raw rows (exact, slower).

Revision ID: e2b4c6d8f0a1
Revises: d08c9d0e1f2a
Create Date: 2026-12-04 10:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e2b4c6d8f0a1'
down_revision = 'd08c9d0e1f2a'
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
        op.add_column(
            f'metric_rollup_{kind}', sa.Column('by_template_version', sa.String(length=200))
        )


def downgrade():
    _empty()
    for kind in TABLES:
        with op.batch_alter_table(f'metric_rollup_{kind}') as batch_op:
            batch_op.drop_column('by_template_version')
