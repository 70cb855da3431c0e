"""Pages: one dashboard of success metrics, the monthly pattern report (page and CSV), and
the proactive health history. Engineers and admins."""

from __future__ import annotations

import csv
from datetime import date

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from apps.core.charts import bar_chart, grouped_bar_chart
from apps.core.permissions import perm_required
from apps.issues.metrics import metrics_page_context
from apps.monitoring.models import HealthRun
from apps.monitoring.selectors.dashboard import (
    incident_response_times,
    monthly_pattern_report,
    review_sla_compliance,
)

PERM = ("accounts.triage_issue", "accounts.manage_thresholds")


@perm_required(PERM)
def dashboard_view(request: HttpRequest) -> HttpResponse:
    sla = review_sla_compliance()
    incidents = incident_response_times()
    context = {
        **metrics_page_context(),
        "sla": sla,
        "incidents": incidents,
        "sla_chart": bar_chart(
            [(f"{w['week']:%m-%d}", w["pct"] or 0) for w in sla["weekly"]],
            unit="%",
            title="Review tasks closed within SLA, per week",
            max_value=100,
        ),  # fmt: skip
        "incident_chart": grouped_bar_chart(
            [
                (t, v["mtta"]["median"] or 0, v["mttr"]["median"] or 0)
                for t, v in incidents["by_trigger"].items()
            ],
            series=("MTTA", "MTTR"),
            unit="min",
            title="Median minutes to acknowledge / resolve",
        ),  # fmt: skip
    }
    return render(request, "monitoring/dashboard.html", context)


def _month(request: HttpRequest) -> date:
    raw = request.GET.get("month", "")
    try:
        year, month = (int(x) for x in raw.split("-"))
        if not 2000 <= year <= 2100:
            raise ValueError(raw)
        return date(year, month, 1)
    except ValueError:
        today = timezone.localdate()
        return date(today.year, today.month, 1)


@perm_required(PERM)
def pattern_report_view(request: HttpRequest) -> HttpResponse:
    month = _month(request)
    report = monthly_pattern_report(month=month)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="patterns-{month:%Y-%m}.csv"'
        writer = csv.writer(response)
        writer.writerow(["section", "key", "title", "category", "value", "previous"])
        for r in report["recurring"]:
            writer.writerow(["recurring", r["fingerprint"], r["title"], r["category"],
                             r["occurrences"], ""])  # fmt: skip
        for r in report["categories"]:
            writer.writerow(["category", r["category"], r["label"], r["category"],
                             r["this_month"], r["previous"]])  # fmt: skip
        for r in report["slowest"]:
            writer.writerow(["slowest", r["id"], r["title"], r["category"], r["hours"], ""])
        return response
    return render(request, "monitoring/patterns.html", {"report": report, "month": month})


@perm_required(PERM)
def health_view(request: HttpRequest) -> HttpResponse:
    runs = list(HealthRun.objects.prefetch_related("results").order_by("-ran_at")[:48])
    latest = runs[0] if runs else None
    return render(request, "monitoring/health.html", {"latest": latest, "runs": runs})
