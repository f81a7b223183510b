"""ticket_sla: first-response and resolution seconds on the calendar clock

The SLA facts kept only the seconds on each ticket's SLA clock (business hours
for P3/P4); the ``*_elapsed`` duration KPIs need every second counted. Existing
rows are filled from their ticket's timestamps (the same rule as
``analysis.sla.services.measure``: a ticket closed without a first response
counts its resolution, or its close, as the response).

Revision ID: c81d3e5a7f42
Revises: f4b79c44e18e
Create Date: 2026-12-04 02:45:00.000000

"""
from alembic import op
import sqlalchemy as sa

import survey_app.types


# revision identifiers, used by Alembic.
revision = 'c81d3e5a7f42'
down_revision = 'f4b79c44e18e'
branch_labels = None
depends_on = None

BATCH = 1000


def _seconds(start, end):
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def upgrade():
    with op.batch_alter_table('ticket_sla', schema=None) as batch_op:
        batch_op.add_column(sa.Column('first_response_elapsed_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resolution_elapsed_seconds', sa.Integer(), nullable=True))
        batch_op.create_index('ix_ticket_sla_closed_frt_elapsed', ['closed_at', 'first_response_elapsed_seconds'], unique=False)
        batch_op.create_index('ix_ticket_sla_closed_resolution_elapsed', ['closed_at', 'resolution_elapsed_seconds'], unique=False)

    # Fill existing rows in Python, so SQLite and PostgreSQL count seconds the same way.
    stamp = survey_app.types.UTCDateTime()
    ticket = sa.table(
        'ticket',
        sa.column('id', sa.Integer()),
        sa.column('created_at', stamp),
        sa.column('first_response_at', stamp),
        sa.column('resolved_at', stamp),
        sa.column('closed_at', stamp),
    )
    facts = sa.table(
        'ticket_sla',
        sa.column('ticket_id', sa.Integer()),
        sa.column('first_response_elapsed_seconds', sa.Integer()),
        sa.column('resolution_elapsed_seconds', sa.Integer()),
    )
    connection = op.get_bind()
    update = (
        facts.update()
        .where(facts.c.ticket_id == sa.bindparam('b_id'))
        .values(
            first_response_elapsed_seconds=sa.bindparam('b_response'),
            resolution_elapsed_seconds=sa.bindparam('b_resolution'),
        )
    )
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(
                ticket.c.id,
                ticket.c.created_at,
                ticket.c.first_response_at,
                ticket.c.resolved_at,
                ticket.c.closed_at,
            )
            .select_from(ticket.join(facts, facts.c.ticket_id == ticket.c.id))
            .where(ticket.c.id > last_id)
            .order_by(ticket.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        connection.execute(
            update,
            [
                {
                    'b_id': row.id,
                    'b_response': _seconds(
                        row.created_at, row.first_response_at or row.resolved_at or row.closed_at
                    ),
                    'b_resolution': _seconds(row.created_at, row.resolved_at or row.closed_at),
                }
                for row in rows
            ],
        )
        last_id = rows[-1].id


def downgrade():
    with op.batch_alter_table('ticket_sla', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_sla_closed_resolution_elapsed')
        batch_op.drop_index('ix_ticket_sla_closed_frt_elapsed')
        batch_op.drop_column('resolution_elapsed_seconds')
        batch_op.drop_column('first_response_elapsed_seconds')
