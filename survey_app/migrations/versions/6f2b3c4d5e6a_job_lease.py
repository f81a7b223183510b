"""job_lease: one runner per periodic job at a time

Revision ID: 6f2b3c4d5e6a
Revises: 5e1a2b3c4d5f
Create Date: 2026-12-04 03:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import survey_app.types


# revision identifiers, used by Alembic.
revision = '6f2b3c4d5e6a'
down_revision = '5e1a2b3c4d5f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'job_lease',
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('holder', sa.String(length=200), nullable=False),
        sa.Column('expires_at', survey_app.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_job_lease')),
    )


def downgrade():
    op.drop_table('job_lease')
