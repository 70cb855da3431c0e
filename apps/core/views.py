"""Error handlers: JSON for /api/ paths, the normal pages elsewhere."""

from __future__ import annotations

import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from apps.core.exceptions import error_body
from apps.core.unavailable import unavailable_dependency, unavailable_response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    # Called inside Django's except block: a dependency that is down is a 503.
    dependency = unavailable_dependency(sys.exc_info()[1])
    if dependency is not None:
        return unavailable_response(request, dependency)
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)
