"""One error format for the whole API, and the one table from domain errors to statuses.

Every API error is JSON ``{"code": "<stable_snake_case>", "message": "<human>",
"details": {...}}`` (``details`` only when there is something to say).
Services raise :class:`apps.core.errors.DomainError` subclasses (no HTTP in
them); :data:`DOMAIN_STATUS` is the only place that gives them a status, for
the API (:func:`api_exception_handler`) and for pages (``apps.core.error_pages``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from apps.core import errors
from apps.core.unavailable import RETRY_AFTER_S, unavailable_body, unavailable_dependency

logger = logging.getLogger(__name__)

# Domain error class -> HTTP status. Looked up along the MRO, so a subclass of a
# subclass inherits its parent's status; a bare DomainError is invalid input.
DOMAIN_STATUS: dict[type[errors.DomainError], int] = {
    errors.DomainError: 400,
    errors.InvalidInput: 400,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.LengthRequired: 411,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
}


def domain_status(exc: errors.DomainError) -> int:
    """The HTTP status for a domain error (the edges' one mapping)."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400  # pragma: no cover - DomainError itself is in the table


# DRF exception class -> stable code. Checked in order (subclasses first).
_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.ValidationError, "invalid"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.ParseError, "parse_error"),
    (exceptions.Throttled, "throttled"),
]


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return body


def _message(detail: Any) -> str:
    if isinstance(detail, (list, tuple)) and detail:
        return _message(detail[0])
    if isinstance(detail, dict):
        return "Invalid input."
    return str(detail)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF EXCEPTION_HANDLER. Unknown exceptions return None -> 500 (JSON via handler500)."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args[:1])
    elif isinstance(exc, RequestDataTooBig):
        exc = errors.PayloadTooLarge("payload_too_large", "The request body is too large.")

    if isinstance(exc, errors.DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.details), status=domain_status(exc))

    dependency = unavailable_dependency(exc)
    if dependency is not None:
        set_rollback()
        return Response(
            unavailable_body(dependency), status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )  # fmt: skip

    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    code = next((c for cls, c in _CODES if isinstance(exc, cls)), None)
    if code is None:
        code = exc.default_code if isinstance(exc.default_code, str) else "error"
    details: dict[str, Any] | None = None
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        details = {"fields": detail} if isinstance(detail, dict) else {"errors": detail}
        message = "Invalid input."
    elif isinstance(exc, exceptions.Throttled):
        message = "Too many requests."
        details = {"wait_seconds": exc.wait} if exc.wait is not None else None
    else:
        message = _message(exc.detail)
    body = error_body(code, message, details)

    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)
