"""Entry point for Celery: ``celery -A survey_app.worker worker --beat``.

Builds the app once for the worker process (never imported by the web app).
"""

from __future__ import annotations

from . import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
