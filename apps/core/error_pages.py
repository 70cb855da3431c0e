"""Domain errors on HTML pages: the page edge's side of ``DOMAIN_STATUS``.

:func:`domain_error_response` is the one helper views call when they catch a
:class:`~apps.core.errors.DomainError`; :class:`DomainErrorMiddleware` calls it
for the ones nobody caught. Everything is rendered by templates, so the
message is always HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers

from apps.core.errors import DomainError, LengthRequired
from apps.core.exceptions import domain_status, error_body
from apps.core.htmx import is_htmx_partial

ERROR_PAGE = "core/error.html"
ERROR_PARTIAL = "core/partials/error.html"


def domain_error_fragment(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """The inline error (``<p class="error" role="alert">``) with the error's status."""
    context = {"code": exc.code, "message": exc.message}
    return render(request, ERROR_PARTIAL, context, status=domain_status(exc))


def domain_error_response(
    request: HttpRequest, exc: DomainError, *, back: str | None = None
) -> HttpResponse:
    """A domain error on a page.

    htmx (not boosted): the inline error with the error's status, retargeted to
    ``#messages-inline``. Otherwise, with ``back``: the message as a flash and a
    redirect there (post/redirect/get). Without ``back``: an error page with
    the error's status.
    """
    if is_htmx_partial(request):
        response = domain_error_fragment(request, exc)
        response["HX-Retarget"] = "#messages-inline"
        response["HX-Reswap"] = "innerHTML"
        patch_vary_headers(response, ("HX-Request",))
        return response
    if back is not None:
        messages.error(request, exc.message)
        return redirect(back)
    context = {"code": exc.code, "message": exc.message}
    response = render(request, ERROR_PAGE, context, status=domain_status(exc))
    patch_vary_headers(response, ("HX-Request",))
    return response


class DomainErrorMiddleware:
    """Turns an uncaught DomainError from a plain Django view into its status.

    DRF views never get here (their exception handler answers first); a plain
    view under ``/api/`` gets the API's JSON body.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _chunked_without_length(request):
            # Django reads a body only up to CONTENT_LENGTH: a chunked one would reach
            # every upload (studies, dataset and model zips) as empty.
            return self._answer(request, LengthRequired("length_required", LENGTH_MESSAGE))
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DomainError):
            return None
        return self._answer(request, exception)

    @staticmethod
    def _answer(request: HttpRequest, exception: DomainError) -> HttpResponse:
        if request.path.startswith("/api/"):
            body = error_body(exception.code, exception.message, exception.details)
            return JsonResponse(body, status=domain_status(exception))
        return domain_error_response(request, exception)


LENGTH_MESSAGE = (
    "Send the body with a Content-Length header: chunked transfer encoding is not supported."
)


def _chunked_without_length(request: HttpRequest) -> bool:
    meta = request.META
    return "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get(
        "CONTENT_LENGTH"
    )
