"""Role and permission helpers shared by every app.

HTML pages are session-only: API tokens authenticate DRF views only, so a
token never opens a page. Use :func:`perm_required` on page views and
:func:`api_perm` on DRF views.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

from apps.core.navigation import Perm, user_has_perm


def perm_required(perm: Perm) -> Callable:
    """Page view decorator: anonymous -> login page; signed in without perm -> 403.

    ``perm`` is a permission string, a tuple (any of), or None (signed in).
    """

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_has_perm(request.user, perm):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def api_perm(perm: Perm) -> type[BasePermission]:
    """DRF permission class requiring ``perm`` (string or any-of tuple)."""

    class _HasPerm(BasePermission):
        message = "You do not have permission to perform this action."

        def has_permission(self, request: Any, view: Any) -> bool:
            user = request.user
            return bool(user and user.is_authenticated and user_has_perm(user, perm))

    _HasPerm.__name__ = f"HasPerm[{perm}]"
    return _HasPerm
