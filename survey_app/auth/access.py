"""Role checks for staff views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from flask import abort
from flask_login import current_user, login_required
from werkzeug.wrappers import Response

from ..errors import api_error
from ..models import Role

P = ParamSpec("P")
R = TypeVar("R")


def role_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Require a signed-in user holding one of ``roles`` (admins pass every check).

    Anonymous users are sent to the sign-in page; signed-in users without the
    role get 403.
    """

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        @login_required
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


#: Any staff member.
staff_required = role_required(Role.ANALYST, Role.MANAGER)
#: Managers (and admins).
manager_required = role_required(Role.MANAGER)
#: Admins only.
admin_required = role_required()


def api_role_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """For JSON endpoints: like :func:`role_required`, but answers 401 / 403 JSON errors
    (``{"error": {"code": "unauthorized" | "forbidden", ...}}``) instead of redirecting."""

    def decorator(view: Callable[P, R]) -> Callable[P, R | Response]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            if not current_user.is_authenticated:
                return api_error(401, "unauthorized", "Sign in to use this endpoint.")
            if not current_user.has_role(*roles):
                return api_error(403, "forbidden", "Your role may not use this endpoint.")
            return view(*args, **kwargs)

        return wrapped

    return decorator
