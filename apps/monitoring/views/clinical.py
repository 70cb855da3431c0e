"""The clinical performance monitor page and its thresholds form.

Everyone who may see de-identified studies (radiologists, engineers, admins) sees the
page: public ids and pseudonymous site keys only; admins change the thresholds (audited).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.core.charts import histogram_chart, line_chart
from apps.core.errors import DomainError
from apps.core.navigation import user_has_perm
from apps.core.permissions import perm_required
from apps.core.requests import client_ip
from apps.monitoring.services.clinical import (
    THRESHOLD_FIELDS,
    clinical_report,
    monitor_thresholds_update,
)
from mahtqa.cephalometry.landmarks import ABBREVIATIONS

BUCKETS = {"day": "per day", "25": "per 25 cases", "50": "per 50 cases", "100": "per 100 cases"}


def _pct(v: float | None) -> float | None:
    return None if v is None else 100.0 * v


def _fmt(v: float | None, *, pct: bool = False, digits: int = 2) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f} %" if pct else f"{v:.{digits}f}"


def _table(groups: dict[str, dict]) -> list[dict]:
    """Rows of a by-site / by-model table, formatted."""
    return [
        {"name": name, "cases": s["cases"], "reviewed": s["reviewed"],
         "corrected": s["corrected"], "rejected": s["rejected"],
         "correction": _fmt(s["correction_rate"], pct=True),
         "rejection": _fmt(s["rejection_rate"], pct=True), "mre": _fmt(s["mre_mm"]),
         "sdr": {t: f"{v:.1f}" for t, v in (s["sdr"] or {}).items()},
         "ood": _fmt(s["ood_rate"], pct=True), "confidence": _fmt(s["mean_confidence"]),
         "per_landmark": [(a, _fmt(v["mre_mm"]), f"{v['sdr']['2.0']:.0f}")
                          for a, v in (s["per_landmark"] or {}).items()]}
        for name, s in groups.items()
    ]  # fmt: skip


def _charts(report: dict) -> dict:
    rows = report["timeline"]
    x = [(r["index"], r) for r in rows]
    per_landmark = {
        a: [(i, (r["per_landmark"] or {}).get(a, {}).get("mre_mm")) for i, r in x]
        for a in ABBREVIATIONS
    }
    hist = report["histogram"]
    return {
        "mre_chart": line_chart(per_landmark, title="MRE per landmark (mm) over time"),
        "rates_chart": line_chart(
            {
                "correction %": [(i, _pct(r["correction_rate"])) for i, r in x],
                "rejection %": [(i, _pct(r["rejection_rate"])) for i, r in x],
            },
            title="Correction and rejection rate (%) over time",
        ),  # fmt: skip
        "ood_chart": line_chart(
            {
                "OOD rate %": [(i, _pct(r["ood_rate"])) for i, r in x],
                "mean confidence %": [(i, _pct(r["mean_confidence"])) for i, r in x],
            },
            title="OOD rate and mean confidence (%) over time",
        ),  # fmt: skip
        "confidence_chart": histogram_chart(
            hist["counts"], edges=hist["edges"], title="Landmark confidence"
        ),
    }


@require_GET
@perm_required("accounts.view_deidentified")
def clinical_view(request: HttpRequest) -> HttpResponse:
    bucket = request.GET.get("bucket", "day")
    bucket = bucket if bucket in BUCKETS else "day"
    site = request.GET.get("site", "")[:32]
    report = clinical_report(bucket=bucket if bucket == "day" else int(bucket), site=site)
    for row in report["timeline"]:
        row["sdr2"] = f"{row['sdr']['2.0']:.1f}" if row["sdr"] else "–"
    context = {
        "r": report, "buckets": BUCKETS, "bucket": bucket, **_charts(report),
        "overall": _table({"all sites": report["overall"]})[0],
        "by_site": _table(report["by_site"]), "by_model": _table(report["by_model"]),
        "alerts": [a.as_dict() for a in report["alerts"]],
        "can_edit": user_has_perm(request.user, "accounts.manage_thresholds"),
        "fields": [(name, getattr(report["config"], name)) for name in THRESHOLD_FIELDS],
        "errors": {},
    }  # fmt: skip
    return render(request, "monitoring/clinical.html", context)


@require_POST
@perm_required("accounts.manage_thresholds")
def clinical_thresholds_view(request: HttpRequest) -> HttpResponse:
    values = {name: request.POST.get(name, "") for name in THRESHOLD_FIELDS}
    try:
        monitor_thresholds_update(user=request.user, values=values, ip=client_ip(request))
    except DomainError as exc:
        return render(
            request, "monitoring/clinical_thresholds.html",
            {"fields": list(values.items()), "errors": exc.details or {}, "message": exc.message},
            status=400,
        )  # fmt: skip
    messages.success(request, "Clinical monitor thresholds saved.")
    return redirect("monitoring:clinical")
