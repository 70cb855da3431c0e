"""One error format for the whole API.

Every API error is JSON ``{"code": "<stable_snake_case>", "message": "<human>",
"details": {...}}`` (``details`` only when there is something to say).
Services and views raise :class:`ApiError` for domain errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """A domain error with a stable code, e.g. ``ApiError("study_not_found", "...", 404)``."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,  # noqa: A002 - the name the callers expect
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.code = code
        self.message = message
        self.status_code = status
        self.details = details or {}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


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
    (PayloadTooLarge, "payload_too_large"),
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
        exc = PayloadTooLarge()

    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, ApiError):
        body = error_body(exc.code, exc.message, exc.details)
    else:
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
