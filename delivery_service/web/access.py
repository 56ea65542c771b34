"""Who may open a staff page: one decorator for every blueprint, and the page's actor."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort, request
from flask_login import current_user, login_required

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor, effective_role


def administering() -> bool:
    """On an administration page (/admin/…), where a province admin acts as an admin of their
    province; elsewhere they act as their province's officer (accounts.services.effective_role)."""
    return (request.blueprint or "").startswith("admin") or request.blueprint == "webhooks"


def current_role() -> Role:
    return effective_role(current_user, administering=administering())


def roles_required(*roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Logged in with one of ``roles``; other roles get 403 (and no one logged in goes to log-in)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if current_role() not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorate


def page_actor() -> Actor:
    """The logged-in user, as the services take them."""
    return Actor.of_user(current_user, administering=administering())
