"""Indexes on the application shell's tables that exist for the KPI queries.

Each covers one population's period column and every column the overview
dashboard reads, so SQLite and PostgreSQL answer from the index alone
(``benchmarks/metrics_bench.py``). Declared here, next to the queries they
serve, and created by the migrations like every other index.
"""

from __future__ import annotations

from sqlalchemy import Index

from survey_app.models import Ticket
from survey_app.surveys.models import Invitation, SurveyResponse

#: CSAT overall, NPS and CES of responses submitted in a period.
RESPONSES_OVERVIEW = Index(
    "ix_survey_response_submitted_overview",
    SurveyResponse.submitted_at,
    SurveyResponse.csat_overall,
    SurveyResponse.nps,
    SurveyResponse.ces,
)
#: The response rate: invitations sent in a period and whether they were answered.
INVITATIONS_SENT = Index("ix_invitation_sent_answered", Invitation.sent_at, Invitation.answered_at)
#: Skip reasons of invitations created in a period (only skipped invitations are indexed).
INVITATIONS_SKIPPED = Index(
    "ix_invitation_created_skip_reason",
    Invitation.created_at,
    Invitation.skip_reason,
    sqlite_where=Invitation.skip_reason.is_not(None),
    postgresql_where=Invitation.skip_reason.is_not(None),
)
#: FCR, reopen rate and contacts per ticket of tickets closed in a period.
TICKETS_CLOSED = Index(
    "ix_ticket_closed_contacts",
    Ticket.closed_at,
    Ticket.contact_count,
    Ticket.reopen_count,
)
