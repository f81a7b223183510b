"""metric roll-ups: an index on (dimension, by_team, day)

A view with several filters reads the combined slice of its period and keeps the
rows that match; with a team among the filters (nearly always) this index reads
that team's rows only.

Revision ID: cf7b8c9d0e1f
Revises: be6a7b8c9d0e
Create Date: 2026-12-04 09:15:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'cf7b8c9d0e1f'
down_revision = 'be6a7b8c9d0e'
branch_labels = None
depends_on = None

TABLES = ('responses', 'sent', 'skipped', 'tickets', 'sla', 'durations', 'created')


def upgrade():
    for kind in TABLES:
        op.create_index(
            f'ix_metric_rollup_{kind}_dimension_team_day',
            f'metric_rollup_{kind}',
            ['dimension', 'by_team', 'day'],
        )


def downgrade():
    for kind in TABLES:
        op.drop_index(
            f'ix_metric_rollup_{kind}_dimension_team_day', table_name=f'metric_rollup_{kind}'
        )
