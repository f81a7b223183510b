"""metric roll-ups: daily KPI aggregates per slice, dirty instants and their triggers

The roll-ups are empty until ``closedloop metrics rebuild`` or the first round of
the ``refresh-metrics`` job; until then the KPI queries read the raw rows. The
triggers record, in the writing transaction, the instants whose local days a
write may change (see ``analysis.metrics.rollup``), once the roll-ups are built
(before that, a write has nothing to make stale: a bulk load costs no extra rows).

Revision ID: 8b4d5e6f7a8c
Revises: 7a3c4d5e6f7b
Create Date: 2026-12-04 05:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8b4d5e6f7a8c'
down_revision = '7a3c4d5e6f7b'
branch_labels = None
depends_on = None

COMBINED = ('team', 'channel', 'priority', 'product_line', 'region', 'customer_tier',
            'customer_is_new')
CSAT = ('overall', 'speed', 'professionalism', 'attitude', 'effectiveness')
DURATIONS = (
    'first_response_time',
    'resolution_time',
    'first_response_time_elapsed',
    'resolution_time_elapsed',
)
AGGREGATES = {
    'responses': (
        'responses',
        *(f'csat_{d}_{part}' for d in CSAT for part in ('n', 'sum', 'satisfied')),
        'nps_n', 'nps_promoters', 'nps_detractors', 'ces_n', 'ces_sum', 'ces_easy',
        # the dashboard's distributions: answers per score, comments per sentiment, driver sums
        *(f'nps_{v}' for v in range(0, 11)),
        *(f'csat_overall_{v}' for v in range(1, 6)),
        *(f'ces_{v}' for v in range(1, 8)),
        *(f'sentiment_{label}' for label in ('positive', 'neutral', 'negative', 'none', 'pending')),
        *(f'driver_{d}_{p}' for d in CSAT[1:] for p in ('n', 'x', 'y', 'xy', 'x2', 'y2')),
    ),
    'sent': ('sent', 'answered'),
    'skipped': ('count',),
    'tickets': ('closed', 'first_contact_resolved', 'reopened', 'contacts'),
    'sla': ('sla_measured', 'sla_breached'),
    'durations': tuple(f'{d}_{p}' for d in DURATIONS for p in ('n', 'total')),
    'created': ('n', 'seconds', 'elapsed'),
}

# table → (columns whose update may move a KPI, instants to mark for a row R (NEW or OLD)).
TRIGGERS = {
    'survey_response': (
        ('submitted_at', *(f'csat_{d}' for d in CSAT), 'nps', 'ces', 'comment', 'sentiment_label',
         'team', 'agent',
         'channel', 'priority', 'product_line', 'region', 'customer_tier', 'customer_is_new',
         'template_version_id'),
        ('SELECT R.submitted_at AS at',),
    ),
    'invitation': (
        ('sent_at', 'created_at', 'answered_at', 'skip_reason', 'template_version_id',
         'ticket_id', 'customer_id'),
        ('SELECT R.sent_at AS at', 'SELECT R.created_at',
         'SELECT closed_at FROM ticket WHERE id = R.ticket_id',
         'SELECT closed_at FROM ticket_sla WHERE ticket_id = R.ticket_id'),
    ),
    'ticket': (
        ('closed_at', 'created_at', 'team', 'agent', 'channel', 'priority', 'product_line',
         'region', 'customer_id', 'contact_count', 'reopen_count'),
        ('SELECT R.closed_at AS at', 'SELECT R.created_at',
         'SELECT sent_at FROM invitation WHERE ticket_id = R.id',
         'SELECT created_at FROM invitation WHERE ticket_id = R.id',
         'SELECT closed_at FROM ticket_sla WHERE ticket_id = R.id'),
    ),
    'ticket_sla': (
        ('closed_at', 'priority', 'breached', 'first_response_seconds', 'resolution_seconds',
         'first_response_elapsed_seconds', 'resolution_elapsed_seconds'),
        ('SELECT R.closed_at AS at',
         'SELECT created_at FROM ticket WHERE id = R.ticket_id'),
    ),
    'customer': (
        ('tier', 'is_new'),
        ('SELECT closed_at AS at FROM ticket WHERE customer_id = R.id',
         'SELECT created_at FROM ticket WHERE customer_id = R.id',
         'SELECT ticket_sla.closed_at FROM ticket_sla JOIN ticket ON ticket.id = ticket_sla.ticket_id'
         ' WHERE ticket.customer_id = R.id',
         'SELECT sent_at FROM invitation WHERE customer_id = R.id',
         'SELECT created_at FROM invitation WHERE customer_id = R.id'),
    ),
}


def _mark(selects, row):
    union = ' UNION ALL '.join(s.replace('R.', f'{row}.') for s in selects)
    return f'INSERT INTO metric_dirty (at) SELECT at FROM ({union}) AS marked WHERE at IS NOT NULL;'


BUILT = 'WHEN EXISTS (SELECT 1 FROM metric_rollup_state)'


def _create_triggers():
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, (columns, selects) in TRIGGERS.items():
        watched = ', '.join(columns)
        name = f'metric_dirty_{table}'
        if postgres:
            op.execute(f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM metric_rollup_state) THEN RETURN NULL; END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN {_mark(selects, 'OLD')} END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN {_mark(selects, 'NEW')} END IF;
    RETURN NULL;
END $$""")
            events = 'UPDATE OF ' + watched if table == 'customer' else (
                f'INSERT OR DELETE OR UPDATE OF {watched}')
            op.execute(
                f'CREATE TRIGGER {name} AFTER {events} ON {table} '
                f'FOR EACH ROW EXECUTE FUNCTION {name}()'
            )
            continue
        op.execute(
            f'CREATE TRIGGER {name}_update AFTER UPDATE OF {watched} ON {table} {BUILT} '
            f'BEGIN {_mark(selects, "OLD")} {_mark(selects, "NEW")} END'
        )
        if table != 'customer':
            op.execute(
                f'CREATE TRIGGER {name}_insert AFTER INSERT ON {table} {BUILT} '
                f'BEGIN {_mark(selects, "NEW")} END'
            )
            op.execute(
                f'CREATE TRIGGER {name}_delete AFTER DELETE ON {table} {BUILT} '
                f'BEGIN {_mark(selects, "OLD")} END'
            )


def _drop_triggers():
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table in TRIGGERS:
        name = f'metric_dirty_{table}'
        if postgres:
            op.execute(f'DROP TRIGGER IF EXISTS {name} ON {table}')
            op.execute(f'DROP FUNCTION IF EXISTS {name}()')
        else:
            for event in ('update', 'insert', 'delete'):
                op.execute(f'DROP TRIGGER IF EXISTS {name}_{event}')


def upgrade():
    for kind, names in AGGREGATES.items():
        table = f'metric_rollup_{kind}'
        columns = [
            sa.Column('id', sa.Integer(), nullable=False),
            sa.Column('day', sa.Date(), nullable=False),
            sa.Column('dimension', sa.String(length=32), nullable=False),
            sa.Column('value', sa.String(length=200), nullable=True),
            sa.Column('extra', sa.String(length=32), nullable=True),
            *(sa.Column(f'by_{d}', sa.String(length=200), nullable=True) for d in COMBINED),
            *(sa.Column(name, sa.BigInteger(), nullable=False) for name in names),
        ]
        if kind == 'durations':
            columns += [sa.Column(f'{d}_values', sa.LargeBinary(), nullable=False) for d in DURATIONS]
        op.create_table(table, *columns, sa.PrimaryKeyConstraint('id', name=op.f(f'pk_{table}')))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(f'ix_{table}_dimension_day', ['dimension', 'day'], unique=False)
    op.create_table(
        'metric_rollup_state',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_rollup_state')),
    )
    op.create_table(
        'metric_dirty',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_metric_dirty')),
    )
    _create_triggers()


def downgrade():
    _drop_triggers()
    op.drop_table('metric_dirty')
    op.drop_table('metric_rollup_state')
    for kind in reversed(list(AGGREGATES)):
        table = f'metric_rollup_{kind}'
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f'ix_{table}_dimension_day')
        op.drop_table(table)
