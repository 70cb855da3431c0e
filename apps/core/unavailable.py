"""A dependency that is down answers 503 with Retry-After, never 500.

The database, the broker or the cache being unreachable is not a bug: the
client should try again shortly, and nothing was stored (every write is one
transaction). Used by the DRF exception handler (errors inside API views) and
by ``handler500`` (errors anywhere else, e.g. the session middleware's query).
"""

from __future__ import annotations

from django.db import InterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

RETRY_AFTER_S = 5


class StorageUnavailable(OSError):
    """A file could not be written (disk full, read-only, gone): a dependency that is
    down, answered 503 like the database (raised by ``apps.core.storage``)."""


_DEPENDENCIES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((DatabaseOperationalError, InterfaceError), "database"),
    ((BrokerOperationalError,), "broker"),
    ((RedisConnectionError, RedisTimeoutError), "cache"),
    ((StorageUnavailable,), "storage"),
)


def unavailable_dependency(exc: BaseException | None) -> str | None:
    """ "database", "broker", "cache" or "storage" when ``exc`` says that dependency is
    down."""
    for types, name in _DEPENDENCIES:
        if isinstance(exc, types):
            return name
    return None


def unavailable_body(dependency: str) -> dict:
    return {
        "code": "service_unavailable",
        "message": f"The {dependency} is unavailable. Nothing was stored; try again shortly.",
        "details": {"dependency": dependency, "retry_after_s": RETRY_AFTER_S},
    }


def unavailable_response(request: HttpRequest, dependency: str) -> HttpResponse:
    """JSON for the API, a plain page (no database needed to render it) elsewhere."""
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(unavailable_body(dependency), status=503)
    else:
        html = render_to_string(
            "503.html", {"dependency": dependency, "retry_after_s": RETRY_AFTER_S}
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response
