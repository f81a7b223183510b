"""kpi targets and alerts

Revision ID: b6e2f4a91c07
Revises: 142b5864a702
Create Date: 2026-11-30 19:05:00.000000

"""
from alembic import op
import sqlalchemy as sa

import survey_app.types


# revision identifiers, used by Alembic.
revision = 'b6e2f4a91c07'
down_revision = '142b5864a702'
branch_labels = None
depends_on = None

def LEVEL(name):
    return sa.Enum('ok', 'yellow', 'orange', 'red', name=name, native_enum=False, create_constraint=True)


def upgrade():
    op.create_table('kpi_target',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kpi', sa.String(length=60), nullable=False),
    sa.Column('filters', sa.JSON(), nullable=False),
    sa.Column('target', sa.Float(), nullable=False),
    sa.Column('yellow', sa.Float(), nullable=False),
    sa.Column('orange', sa.Float(), nullable=False),
    sa.Column('red', sa.Float(), nullable=False),
    sa.Column('window_days', sa.Integer(), nullable=False),
    sa.Column('alerts_enabled', sa.Boolean(), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.Column('webhook_url', sa.String(length=500), nullable=True),
    sa.Column('webhook_format', sa.Enum('generic', 'slack', 'wecom', 'dingtalk', name='webhook_format', native_enum=False, create_constraint=True), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('created_at', survey_app.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', survey_app.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_status', sa.String(length=20), nullable=True),
    sa.Column('last_value', sa.Float(), nullable=True),
    sa.Column('last_n', sa.Integer(), nullable=True),
    sa.Column('last_checked_at', survey_app.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('yellow < orange AND orange < red', name=op.f('ck_kpi_target_thresholds_increase')),
    sa.CheckConstraint('window_days >= 1 AND window_days <= 366', name=op.f('ck_kpi_target_window_days_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_target'))
    )
    with op.batch_alter_table('kpi_target', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_kpi_target_kpi'), ['kpi'], unique=False)

    op.create_table('alert',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target_id', sa.Integer(), nullable=False),
    sa.Column('kpi', sa.String(length=60), nullable=False),
    sa.Column('level', LEVEL('alert_level'), nullable=False),
    sa.Column('current_level', LEVEL('alert_current_level'), nullable=False),
    sa.Column('target_value', sa.Float(), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('gap', sa.Float(), nullable=False),
    sa.Column('window_start', sa.String(length=10), nullable=False),
    sa.Column('window_end', sa.String(length=10), nullable=False),
    sa.Column('opened_at', survey_app.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('escalated_at', survey_app.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cleared_at', survey_app.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('checked_at', survey_app.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('notified_level', LEVEL('alert_notified_level'), nullable=True),
    sa.Column('notified_at', survey_app.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notify_claimed_at', survey_app.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notify_error', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['target_id'], ['kpi_target.id'], name=op.f('fk_alert_target_id_kpi_target'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alert'))
    )
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.create_index('ix_alert_opened_at', ['opened_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alert_target_id'), ['target_id'], unique=False)
        batch_op.create_index('uq_alert_open_per_target', ['target_id'], unique=True, sqlite_where=sa.text('cleared_at IS NULL'), postgresql_where=sa.text('cleared_at IS NULL'))


def downgrade():
    with op.batch_alter_table('alert', schema=None) as batch_op:
        batch_op.drop_index('uq_alert_open_per_target', sqlite_where=sa.text('cleared_at IS NULL'), postgresql_where=sa.text('cleared_at IS NULL'))
        batch_op.drop_index(batch_op.f('ix_alert_target_id'))
        batch_op.drop_index('ix_alert_opened_at')

    op.drop_table('alert')
    with op.batch_alter_table('kpi_target', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_kpi_target_kpi'))

    op.drop_table('kpi_target')
