"""The Excel improvement report: ``closedloop report excel`` and the managers' download.

Both call :func:`.workbook.write_report` (see that module for the sheets).
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the report page, its download and ``closedloop report``."""
    from .cli import report_cli
    from .routes import bp

    app.register_blueprint(bp)
    app.cli.add_command(report_cli)
