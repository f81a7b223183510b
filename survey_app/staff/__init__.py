"""Staff pages of the application shell: home, tickets, user administration."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from ..routing import list_url
    from .routes import bp

    app.register_blueprint(bp)
    # The pager and CSV links of every staff list (templates/_pager.html).
    app.add_template_global(list_url)
