"""import: drop four indexes no query needs (fewer entries written per imported row)

``ix_ticket_closed_at`` and ``ix_invitation_sent_at`` are the first column of
composite indexes that serve the same queries (``ix_ticket_closed_at_priority``,
``_team``, ``ix_ticket_closed_contacts``; ``ix_invitation_sent_answered``).
``ix_ticket_priority`` and ``ix_ticket_channel`` index a handful of values: the
ticket list filtered by them scans ``ix_ticket_created_at`` in its order and
keeps the matches (same plan with and without them on SQLite and PostgreSQL),
and the KPI queries filter a period first. Each was one more B-tree entry to
write per imported ticket or invitation (issue 15).

Revision ID: d08c9d0e1f2a
Revises: cf7b8c9d0e1f
Create Date: 2026-12-04 10:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'd08c9d0e1f2a'
down_revision = 'cf7b8c9d0e1f'
branch_labels = None
depends_on = None

DROPPED = (
    ('ix_ticket_closed_at', 'ticket', ['closed_at']),
    ('ix_ticket_priority', 'ticket', ['priority']),
    ('ix_ticket_channel', 'ticket', ['channel']),
    ('ix_invitation_sent_at', 'invitation', ['sent_at']),
)


def upgrade():
    for name, table, _columns in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade():
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns)
