"""Helpers shared by the clinical pages."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from apps.core.exceptions import ApiError
from apps.core.htmx import is_htmx_partial

PHI_OR_DEID = ("accounts.view_phi", "accounts.view_deidentified")


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. Behind a trusted proxy, configure it to set REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR") or None


def error_response(request: HttpRequest, exc: ApiError, *, back: str) -> HttpResponse:
    """An ApiError on a page: a message and back (or an inline error for htmx)."""
    if is_htmx_partial(request):
        response = HttpResponse(
            f'<p class="error" role="alert" data-code="{exc.code}">{exc.message}</p>',
            status=exc.status_code,
        )
        response["HX-Retarget"] = "#messages-inline"
        response["HX-Reswap"] = "innerHTML"
        return response
    messages.error(request, exc.message)
    return redirect(back)
