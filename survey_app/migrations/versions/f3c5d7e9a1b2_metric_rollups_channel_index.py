"""metric roll-ups: an index on (dimension, by_channel, day)

A view with several filters and no team among them (a channel with a template
version, a channel and a priority) read every combination row of its period; with a
channel among them it now reads that channel's rows only, as the team's index does
for a team.

Revision ID: f3c5d7e9a1b2
Revises: e2b4c6d8f0a1
Create Date: 2026-12-04 11:00:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3c5d7e9a1b2'
down_revision = 'e2b4c6d8f0a1'
branch_labels = None
depends_on = None

TABLES = ('responses', 'sent', 'skipped', 'tickets', 'sla', 'durations', 'created')


def upgrade():
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        op.create_index(
            f'ix_{table}_dimension_channel_day', table, ['dimension', 'by_channel', 'day']
        )


def downgrade():
    for kind in TABLES:
        table = f'metric_rollup_{kind}'
        op.drop_index(f'ix_{table}_dimension_channel_day', table_name=table)
