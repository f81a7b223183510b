"""survey responses: the team's index carries every other filter's column

The dashboards' raw reads (themes, aspect sentiment, the responses behind a
number) with a team and more filters fetched every response of the team in the
period to test the other filters. With the other filter columns in the team's
index after the period, they are tested in the index and only the matching
responses are read. PostgreSQL keeps the id in it (INCLUDE) for the joins.

Revision ID: d7a9b1c3e5f7
Revises: c6f8a0b2d4e6
Create Date: 2026-12-04 20:45:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd7a9b1c3e5f7'
down_revision = 'c6f8a0b2d4e6'
branch_labels = None
depends_on = None

OTHERS = ('agent', 'channel', 'priority', 'product_line', 'region', 'customer_tier',
          'template_version_id', 'customer_is_new')


def upgrade():
    op.drop_index('ix_survey_response_team_submitted', table_name='survey_response')
    op.create_index(
        'ix_survey_response_team_submitted_values',
        'survey_response',
        ['team', 'submitted_at', *OTHERS],
        postgresql_include=['id'],
    )


def downgrade():
    op.drop_index('ix_survey_response_team_submitted_values', table_name='survey_response')
    op.create_index(
        'ix_survey_response_team_submitted', 'survey_response', ['team', 'submitted_at']
    )
