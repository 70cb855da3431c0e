"""The workers page: each worker x queue's environment report, every check with its fix."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.core.permissions import perm_required
from apps.monitoring.selectors import worker_environment_list

ENGINEER_PERMS = ("accounts.register_model", "accounts.manage_models")
STALE_INTERVALS = 3  # a report older than 3 report intervals is stale (amber)


@require_GET
@perm_required(ENGINEER_PERMS)
def workers_view(request: HttpRequest) -> HttpResponse:
    interval = float(settings.MAHTQA_ENV_REPORT_SECONDS)
    rows = worker_environment_list(stale_after_s=STALE_INTERVALS * interval)
    context = {
        "rows": rows,
        "interval_s": round(interval),
        "stale_after_s": round(STALE_INTERVALS * interval),
    }
    return render(request, "monitoring/workers.html", context)
