"""response_aspect: a comment's sentiment per survey dimension

Filled by the analysis pipeline for responses analysed from now on, and for
all of them by ``closedloop sentiment rescore``.

Revision ID: 7a3c4d5e6f7b
Revises: 6f2b3c4d5e6a
Create Date: 2026-12-04 03:45:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7a3c4d5e6f7b'
down_revision = '6f2b3c4d5e6a'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'response_aspect',
        sa.Column('response_id', sa.Integer(), nullable=False),
        sa.Column('aspect', sa.String(length=20), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('label', sa.String(length=10), nullable=False),
        sa.Column('clauses', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['response_id'], ['survey_response.id'], name=op.f('fk_response_aspect_response_id_survey_response'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('response_id', 'aspect', name=op.f('pk_response_aspect')),
    )
    with op.batch_alter_table('response_aspect', schema=None) as batch_op:
        batch_op.create_index('ix_response_aspect_aspect', ['aspect', 'label'], unique=False)


def downgrade():
    with op.batch_alter_table('response_aspect', schema=None) as batch_op:
        batch_op.drop_index('ix_response_aspect_aspect')
    op.drop_table('response_aspect')
