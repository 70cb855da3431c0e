"""What the report page and the exports show, built from a run (no HTTP here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apps.core.charts import bar_chart, histogram_chart
from apps.datasets import selectors
from apps.datasets.choices import Severity
from apps.datasets.models import ValidationRun
from apps.datasets.services import validation_run_progress
from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.datasets.summary import HIST_EDGES_MM


def _consistency_charts(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    cons = summary.get("consistency") or {}
    unit = " " + cons.get("unit", "mm")
    out = []
    for pair, data in (cons.get("pairs") or {}).items():
        landmarks = data["landmarks"]
        out.append(
            {
                "pair": pair.replace("|", " vs "),
                "overall": data["overall"],
                "least": data["least_consistent"],
                "bars": bar_chart(
                    [(n, s.get("mean", 0.0)) for n, s in landmarks.items()],
                    unit=unit,
                    title=f"Mean annotator distance by landmark ({pair})",
                ),
                "rows": [{"name": n, **s} for n, s in landmarks.items()],
                "histograms": [
                    {
                        "name": n,
                        "svg": histogram_chart(
                            s.get("histogram", []),
                            edges=list(HIST_EDGES_MM),
                            unit=unit.strip(),
                            threshold=cons.get("threshold_mm"),
                            title=f"{n}: distance between annotators",
                            width=220,
                            height=90,
                        ),
                    }
                    for n, s in landmarks.items()
                ],
            }
        )
    return out


def report_context(*, run: ValidationRun, params: Mapping[str, str]) -> dict[str, Any]:
    filters = selectors.FindingFilters(
        severity=params.get("severity", ""),
        code=params.get("code", ""),
        landmark=params.get("landmark", ""),
        image=params.get("image", ""),
        sort=params.get("sort", "severity"),
    )
    summary = run.summary or {}
    quality = summary.get("quality") or {}
    query = "&".join(f"{k}={v}" for k, v in filters.__dict__.items() if v and k != "sort")
    return {
        "run": run,
        "version": run.version,
        "progress": validation_run_progress(run=run),
        "summary": summary,
        "filters": filters,
        "query": query,
        "codes": selectors.finding_codes(run=run),
        "severities": Severity.choices,
        "landmarks": ABBREVIATIONS,
        "findings_qs": selectors.finding_list(run=run, filters=filters),
        "consistency": _consistency_charts(summary),
        "quality_chart": histogram_chart(
            quality.get("histogram", []), edges=list(range(11)), title="Image quality score (0-10)"
        )
        if quality.get("histogram")
        else "",
        "split_chart": bar_chart(
            sorted((summary.get("splits") or {}).items()), title="Images per split"
        ),
    }


def run_export_rows(*, run: ValidationRun) -> list[dict[str, str]]:
    """Every finding, as the CSV/JSON exports and the CLI write it."""
    rows = []
    qs = run.findings.select_related("image").order_by("id")
    for f in qs.iterator(chunk_size=2000):
        rows.append(
            {
                "severity": f.severity,
                "code": f.code,
                "image": f.image.key if f.image else "",
                "landmark": f.landmark,
                "annotator": f.annotator,
                "message": f.message,
            }
        )
    return rows
