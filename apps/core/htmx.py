"""The ONE place that decides between an htmx fragment and a full page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def is_htmx_partial(request: HttpRequest) -> bool:
    htmx = getattr(request, "htmx", None)
    # A boosted request wants the whole page (htmx swaps the body).
    return bool(htmx) and not htmx.boosted


def htmx_partial(
    request: HttpRequest,
    full_template: str,
    partial_template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
) -> HttpResponse:
    """Render ``partial_template`` for htmx requests, ``full_template`` otherwise.

    The full template normally ``{% include %}``s the partial, so the page
    works without JavaScript.
    """
    template = partial_template if is_htmx_partial(request) else full_template
    response = render(request, template, context or {}, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response
