"""sign-in pauses per account and client address; a session generation per user

Failed sign-ins were counted on the account, so anybody could pause an admin's
account by typing wrong passwords for it. They are now counted per (account,
client address) in ``sign_in_throttle``; the account's own counters go.
``user.session_generation`` is part of every session's identity and is raised at
sign-out, which ends the session on the server.

Revision ID: 5e1a2b3c4d5f
Revises: c81d3e5a7f42
Create Date: 2026-12-04 03:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import survey_app.types


# revision identifiers, used by Alembic.
revision = '5e1a2b3c4d5f'
down_revision = 'c81d3e5a7f42'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sign_in_throttle',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('locked_until', survey_app.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_sign_in_throttle_user_id_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_in_throttle')),
        sa.UniqueConstraint('user_id', 'address', name=op.f('uq_sign_in_throttle_user_id_address')),
    )
    with op.batch_alter_table('sign_in_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sign_in_throttle_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('locked_until')


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_until', survey_app.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.drop_column('session_generation')

    with op.batch_alter_table('sign_in_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sign_in_throttle_user_id'))

    op.drop_table('sign_in_throttle')
