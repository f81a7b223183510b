"""survey_response: each slicing dimension indexed with the submission time

The single-column indexes on team, agent, channel, priority, product line,
region, tier and template version made SQLite scan every response of, say, one
team (all time) for a 30-day view filtered by team: without statistics its
planner prefers an equality index over a range. ``(dimension, submitted_at)``
answers the equality and the period from one index, and still serves lookups by
the dimension alone (same number of indexes, so writes cost the same).

Revision ID: ad5f6a7b8c9d
Revises: 9c5e7a1d3b24
Create Date: 2026-12-04 08:30:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'ad5f6a7b8c9d'
down_revision = '9c5e7a1d3b24'
branch_labels = None
depends_on = None

DIMENSIONS = (
    'team', 'agent', 'channel', 'priority', 'product_line', 'region', 'customer_tier',
    'template_version_id',
)


def upgrade():
    for column in DIMENSIONS:
        op.drop_index(f'ix_survey_response_{column}', table_name='survey_response')
        op.create_index(
            f'ix_survey_response_{column}_submitted', 'survey_response', [column, 'submitted_at']
        )


def downgrade():
    for column in DIMENSIONS:
        op.drop_index(f'ix_survey_response_{column}_submitted', table_name='survey_response')
        op.create_index(f'ix_survey_response_{column}', 'survey_response', [column])
