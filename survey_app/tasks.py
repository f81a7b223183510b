"""Background work with Celery, as in Flask's own Celery example.

Tasks run inside the app context and take ids. With no broker configured
(``CELERY_BROKER_URL`` unset) tasks run in-process (``task_always_eager``) and
``closedloop run`` dispatches due invitations from a thread, so the embedded
default needs no extra server. With ``CLOSEDLOOP_CELERY_BROKER_URL=redis://...``
a worker runs them and beat schedules the dispatch::

    celery -A survey_app.worker worker --beat --loglevel INFO
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from celery import Celery, Task, shared_task
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app bound to ``app``, store it in ``app.extensions`` and return it.

    ``CELERY_BROKER_URL`` chooses the broker; without one, tasks run eagerly
    in the calling process. Further Celery settings may be given as the
    ``CELERY`` mapping (``CLOSEDLOOP_CELERY__task_default_queue=...``), as in
    Flask's Celery example. Beat runs every registered periodic job (see
    :mod:`.background`) every ``DISPATCH_INTERVAL_SECONDS`` (0 turns it off).
    """

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    broker = app.config["CELERY_BROKER_URL"]
    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=broker or "memory://",
        task_always_eager=not broker,
        task_eager_propagates=True,
        task_ignore_result=True,
        # A task is acknowledged after it ran, so a killed worker's task runs again;
        # every task here is safe to run twice.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        # Filled by background.register_job: every periodic job, every interval.
        beat_schedule={},
        # Beat's state lives with the rest of the instance, not in the working directory.
        beat_schedule_filename=str(Path(app.instance_path) / "celerybeat-schedule"),
        timezone="UTC",
    )
    celery_app.conf.update(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


@shared_task(name="survey_app.tasks.dispatch_surveys")
def dispatch_surveys() -> dict[str, int]:
    """Send or skip every due invitation and reminder; return the counts.

    Safe to run twice or from two workers at once (invitations are claimed).
    """
    import dataclasses

    from .surveys.invitations import dispatch_due

    return dataclasses.asdict(dispatch_due())


@shared_task(name="survey_app.tasks.analyse_database")
def analyse_database() -> str:
    """Refresh SQLite's query-planner statistics when the big tables have grown."""
    from . import _analyse_database

    return _analyse_database()


@shared_task(name="survey_app.tasks.send_invitation")
def send_invitation(invitation_id: int) -> dict[str, int]:
    """Send one invitation if it is due; return the counts.

    A no-op (all zeros) before its send time, once it was sent or skipped, and
    while another process has it, so it is safe to enqueue more than once.
    """
    import dataclasses

    from .surveys.invitations import send_invitation as send

    return dataclasses.asdict(send(invitation_id))
