"""Liveness and readiness probes: anonymous, JSON, no PHI, no secrets."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.monitoring.checks import readiness_run
from apps.monitoring.services import readiness_record


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. Touches nothing else (no database)."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    report = readiness_run()
    readiness_record(report=report, source="readyz")
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
