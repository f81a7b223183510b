"""pdca_cycle: the day a Check was scheduled for

A cycle at Do whose Check window is still short of the minimum sample can have
its Check scheduled; the periodic PDCA job moves it to Check on or after that
day once the window has enough observations.

Revision ID: 9c5e7a1d3b24
Revises: 8b4d5e6f7a8c
Create Date: 2026-12-04 07:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9c5e7a1d3b24'
down_revision = '8b4d5e6f7a8c'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('pdca_cycle', schema=None) as batch_op:
        batch_op.add_column(sa.Column('check_scheduled_for', sa.Date(), nullable=True))


def downgrade():
    with op.batch_alter_table('pdca_cycle', schema=None) as batch_op:
        batch_op.drop_column('check_scheduled_for')
