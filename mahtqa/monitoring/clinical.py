"""The clinical performance monitor (the guide's ClinicalPerformanceMonitor, section 5.2).

Framework-free: the apps layer turns studies, predictions and reviews into
:class:`CaseRecord` rows; this module computes, over them,

- accuracy of the AI landmarks against the reviewers' final landmarks: radial error per
  landmark in mm (each image's own spacing), MRE and SDR@2/2.5/3/4 mm, per landmark, by
  site, by model version and over time (per day or per N cases); an accepted case counts
  with error 0 (the reviewer kept the AI's points), a rejected one has no final landmarks;
- the correction rate (corrected / reviewed) and rejection rate (rejected / reviewed);
- the confidence distribution and the OOD rate (share of cases with an OOD score above
  the routing limit); edge cases (the largest corrections);
- safety alerts: window checks against the admin's thresholds (the last ``window_cases``
  reviewed cases of a site: MRE, correction rate, rejection rate; the last
  ``window_cases`` cases: OOD rate), and drift (``clinical_drift``: a CUSUM per site and
  signal with a controlled false-alarm rate).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS
from mahtqa.cephalometry.metrics import SDR_THRESHOLDS_MM, radial_errors_mm
from mahtqa.monitoring.clinical_drift import K_DEFAULT, drift_chain

ACCEPTED, CORRECTED, REJECTED = "accepted", "corrected", "rejected"
DECISIONS = (ACCEPTED, CORRECTED, REJECTED)
# Drift signals, each oriented so that larger = worse.
DRIFT_SIGNALS: dict[str, str] = {
    "ood": "OOD score",
    "image": "image statistics (largest component score)",
    "confidence": "landmark confidence (mean, lower is worse)",
    "correction": "correction error (mean radial error, mm)",
}
THRESHOLD_SIGNALS = ("mre", "correction_rate", "rejection_rate", "ood_rate")


@dataclass(frozen=True)
class CaseRecord:
    """One case: the AI's prediction and, when reviewed, the reviewer's decision.

    ``ai_points``/``final_points``: (7, 2) pixel coordinates in ABBREVIATIONS order;
    ``final_points`` is None when not reviewed or rejected; an accepted case's final
    points are the AI's. ``spacing_mm`` is (row, col); None: no errors in mm."""

    case_id: str  # public id (links), never PHI
    at: datetime
    site: str
    model_version: str
    ai_points: np.ndarray
    confidences: np.ndarray  # (7,), NaN where unknown
    ood_score: float | None = None
    image_score: float | None = None
    decision: str | None = None
    final_points: np.ndarray | None = None
    spacing_mm: tuple[float, float] | None = None
    study_id: int | None = None  # the database row, for linking incidents

    def errors_mm(self) -> np.ndarray | None:
        """Radial errors (7,) of the AI against the final landmarks, in mm."""
        return self._errors

    @cached_property
    def _errors(self) -> np.ndarray | None:
        if self.decision not in (ACCEPTED, CORRECTED) or self.spacing_mm is None:
            return None
        final = self.ai_points if self.final_points is None else self.final_points
        return radial_errors_mm(self.ai_points, final, self.spacing_mm)

    @cached_property
    def mean_confidence(self) -> float:
        c = np.asarray(self.confidences, dtype=float)
        return float(np.nanmean(c)) if np.isfinite(c).any() else float("nan")


@dataclass(frozen=True)
class Thresholds:
    """The admin's limits (MonitorSettings) and the OOD limit of the routing policy."""

    window_cases: int = 50
    max_mre_mm: float = 2.0
    max_correction_rate: float = 0.4
    max_rejection_rate: float = 0.15
    max_ood_rate: float = 0.5
    drift_alpha: float = 0.001
    ood_limit: float = 1.0
    reference_cases: int = 200
    min_mm_cases: int = 10  # window MRE needs at least this many cases with errors in mm


@dataclass
class Alert:
    """A safety alert with its evidence; ``key`` folds repeats into one incident."""

    kind: str  # "threshold" or "drift"
    signal: str
    site: str
    statistic: float
    threshold: float
    message: str
    window: dict[str, Any]
    case_ids: list[str] = field(default_factory=list)
    study_ids: list[int] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"clinical:{self.signal}:{self.site}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "signal": self.signal, "site": self.site, "key": self.key,
            "statistic": self.statistic, "threshold": self.threshold, "message": self.message,
            "window": self.window, "case_ids": self.case_ids[:50], "evidence": self.evidence,
        }  # fmt: skip


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def accuracy_summary(records: Iterable[CaseRecord], *, ood_limit: float = 1.0) -> dict[str, Any]:
    """Counts, rates, MRE/SDR (overall and per landmark), OOD rate, mean confidence."""
    records = list(records)
    decided = [r for r in records if r.decision in DECISIONS]
    counts = {d: sum(r.decision == d for r in decided) for d in DECISIONS}
    errs = [e for e in (r.errors_mm() for r in decided) if e is not None]
    ood = [r.ood_score for r in records if r.ood_score is not None]
    conf = [c for c in (r.mean_confidence for r in records) if np.isfinite(c)]
    out: dict[str, Any] = {
        "cases": len(records), "reviewed": len(decided), **counts,
        "correction_rate": _rate(counts[CORRECTED], len(decided)),
        "rejection_rate": _rate(counts[REJECTED], len(decided)),
        "mm_cases": len(errs),
        "ood_rate": _rate(sum(o > ood_limit for o in ood), len(ood)),
        "mean_confidence": float(np.mean(conf)) if conf else None,
        "mre_mm": None, "sdr": None, "per_landmark": None,
    }  # fmt: skip
    if errs:
        e = np.stack(errs)
        out["mre_mm"] = float(e.mean())
        out["sdr"] = {f"{t:.1f}": float(np.mean(e < t) * 100) for t in SDR_THRESHOLDS_MM}
        out["per_landmark"] = {
            a: {"mre_mm": float(e[:, i].mean()),
                "sdr": {f"{t:.1f}": float(np.mean(e[:, i] < t) * 100) for t in SDR_THRESHOLDS_MM}}
            for i, a in enumerate(ABBREVIATIONS)
        }  # fmt: skip
    return out


def group_summaries(
    records: Iterable[CaseRecord], *, by: Callable[[CaseRecord], str], ood_limit: float = 1.0
) -> dict[str, dict[str, Any]]:
    """:func:`accuracy_summary` per group (``by=lambda r: r.site`` or model version)."""
    groups: dict[str, list[CaseRecord]] = defaultdict(list)
    for r in records:
        groups[by(r)].append(r)
    return {k: accuracy_summary(v, ood_limit=ood_limit) for k, v in sorted(groups.items())}


def _ordered(records: Iterable[CaseRecord]) -> list[CaseRecord]:
    return sorted(records, key=lambda r: (r.at, r.case_id))


def timeline(
    records: Iterable[CaseRecord], *, bucket: str | int = "day", ood_limit: float = 1.0
) -> list[dict[str, Any]]:
    """Summaries over time: per calendar day (``"day"``) or per ``bucket`` cases."""
    ordered = _ordered(records)
    chunks: list[tuple[str, list[CaseRecord]]] = []
    if bucket == "day":
        days: dict[str, list[CaseRecord]] = defaultdict(list)
        for r in ordered:
            days[r.at.date().isoformat()].append(r)
        chunks = list(days.items())
    else:
        n = max(1, int(bucket))
        chunks = [(f"{i + 1}-{min(i + n, len(ordered))}", ordered[i : i + n])
                  for i in range(0, len(ordered), n)]  # fmt: skip
    return [
        {"label": label, "index": i, "start": rows[0].at, "end": rows[-1].at,
         **accuracy_summary(rows, ood_limit=ood_limit)}
        for i, (label, rows) in enumerate(chunks)
    ]  # fmt: skip


def edge_cases(records: Iterable[CaseRecord], *, limit: int = 10) -> list[dict[str, Any]]:
    """The largest corrections: cases by their worst landmark error, largest first."""
    rows = []
    for r in records:
        e = r.errors_mm()
        if e is None or r.decision != CORRECTED:
            continue
        worst = int(np.argmax(e))
        moved = [a for a, v in zip(ABBREVIATIONS, e, strict=True) if v > 0]
        rows.append({
            "case_id": r.case_id, "site": r.site, "model_version": r.model_version, "at": r.at,
            "max_error_mm": float(e[worst]), "landmark": ABBREVIATIONS[worst],
            "mre_mm": float(e.mean()), "moved": moved,
        })  # fmt: skip
    rows.sort(key=lambda d: (-d["max_error_mm"], d["case_id"]))
    return rows[:limit]


def confidence_histogram(
    records: Iterable[CaseRecord], *, bins: int = 10
) -> dict[str, list[float] | list[int]]:
    """Histogram of every landmark confidence in [0, 1]."""
    values = np.concatenate([np.asarray(r.confidences, dtype=float) for r in records] or [[]])
    values = values[np.isfinite(values)]
    counts, edges = np.histogram(np.clip(values, 0, 1), bins=bins, range=(0.0, 1.0))
    return {"counts": counts.tolist(), "edges": [round(float(x), 3) for x in edges]}


def _window_info(rows: Sequence[CaseRecord]) -> dict[str, Any]:
    return {"n": len(rows), "first_at": rows[0].at.isoformat() if rows else None,
            "last_at": rows[-1].at.isoformat() if rows else None,
            "last_case": rows[-1].case_id if rows else None}  # fmt: skip


def _alert(kind: str, signal: str, site: str, stat: float, limit: float, message: str,
           rows: Sequence[CaseRecord], evidence: dict[str, Any]) -> Alert:  # fmt: skip
    return Alert(
        kind=kind, signal=signal, site=site, statistic=round(float(stat), 4),
        threshold=float(limit), message=message, window=_window_info(rows),
        case_ids=[r.case_id for r in rows],
        study_ids=[r.study_id for r in rows if r.study_id is not None], evidence=evidence,
    )  # fmt: skip


def threshold_alerts(records: Iterable[CaseRecord], *, thresholds: Thresholds) -> list[Alert]:
    """Window checks per site: a full window of the last ``window_cases`` cases only."""
    t, n = thresholds, thresholds.window_cases
    by_site: dict[str, list[CaseRecord]] = defaultdict(list)
    for r in _ordered(records):
        by_site[r.site].append(r)
    alerts = []
    for site, rows in sorted(by_site.items()):
        reviewed = [r for r in rows if r.decision in DECISIONS][-n:]
        if len(reviewed) >= n:
            s = accuracy_summary(reviewed, ood_limit=t.ood_limit)
            checks = [
                ("correction_rate", s["correction_rate"], t.max_correction_rate, "corrected"),
                ("rejection_rate", s["rejection_rate"], t.max_rejection_rate, "rejected"),
            ]
            if s["mm_cases"] >= t.min_mm_cases:
                checks.append(("mre", s["mre_mm"], t.max_mre_mm, "MRE (mm)"))
            for signal, value, limit, what in checks:
                if value is not None and value > limit:
                    shown = f"{value:.2f} mm" if signal == "mre" else f"{value:.0%}"
                    bound = f"{limit:g} mm" if signal == "mre" else f"{limit:.0%}"
                    alerts.append(_alert(
                        "threshold", signal, site, value, limit,
                        f"Site {site}: {what} {shown} over the last {len(reviewed)} reviewed "
                        f"cases exceeds {bound}.", reviewed,
                        {"summary": {k: s[k] for k in ("reviewed", ACCEPTED, CORRECTED, REJECTED,
                                                       "mre_mm", "correction_rate",
                                                       "rejection_rate")}},
                    ))  # fmt: skip
        scored = [r for r in rows if r.ood_score is not None][-n:]
        if len(scored) >= n:
            flagged = sum(r.ood_score > t.ood_limit for r in scored)
            rate = flagged / len(scored)
            if rate > t.max_ood_rate:
                alerts.append(_alert(
                    "threshold", "ood_rate", site, rate, t.max_ood_rate,
                    f"Site {site}: {rate:.0%} of the last {len(scored)} cases are out of "
                    f"distribution (OOD score > {t.ood_limit:g}); the limit is "
                    f"{t.max_ood_rate:.0%}.", scored, {"flagged": flagged},
                ))  # fmt: skip
    return alerts


def _signal(r: CaseRecord, name: str) -> float:
    if name == "ood":
        return float("nan") if r.ood_score is None else float(r.ood_score)
    if name == "image":
        return float("nan") if r.image_score is None else float(r.image_score)
    if name == "confidence":
        return -r.mean_confidence
    e = r.errors_mm()
    return float("nan") if e is None else float(e.mean())


def drift_alerts(
    records: Iterable[CaseRecord], *, thresholds: Thresholds, signals: Sequence[str] = (),
    k: float = K_DEFAULT, recent: int | None = None,
) -> tuple[list[Alert], dict[str, Any]]:  # fmt: skip
    """CUSUM per site and signal (see ``clinical_drift``): the latest alarm of each chain
    within its last ``recent`` values (default: the window; a large number: any alarm).

    Returns the alerts and the test's parameters (chains, ARL0, limit) for the page."""
    t = thresholds
    signals = list(signals or DRIFT_SIGNALS)
    ordered = _ordered(records)
    by_site: dict[str, list[CaseRecord]] = defaultdict(list)
    for r in ordered:
        by_site[r.site].append(r)
    values = {s: np.array([_signal(r, s) for r in ordered]) for s in signals}
    sites = np.array([r.site for r in ordered], dtype=object)
    chains = [
        (site, s) for site in sorted(by_site) for s in signals
        if np.isfinite(values[s][sites == site]).any()
    ]  # fmt: skip
    # Bonferroni in the rate: over every chain, alpha false alarms per window of cases.
    arl = max(1, len(chains)) * t.window_cases / max(t.drift_alpha, 1e-12)
    params = {"chains": len(chains), "arl0_cases": arl, "k": k, "alpha": t.drift_alpha,
              "reference_cases": t.reference_cases}  # fmt: skip
    alerts = []
    for site, s in chains:
        mine = sites == site
        finding = drift_chain(
            site=site, signal=s, values=values[s][mine], pooled_other=values[s][~mine],
            reference_cases=t.reference_cases, arl=arl, recent=recent or t.window_cases, k=k,
        )  # fmt: skip
        if finding is None:
            continue
        rows = [by_site[site][i] for i in finding.indices]
        alerts.append(_alert(
            "drift", f"drift_{s}", site, finding.statistic, finding.limit,
            f"Site {site}: drift of the {DRIFT_SIGNALS[s]}: CUSUM {finding.statistic:.1f} > "
            f"{finding.limit:.1f} (shift {finding.shift_sd:+.1f} sd against "
            f"{finding.reference_n} cases of {finding.reference}) since "
            f"{by_site[site][finding.change_index].at:%Y-%m-%d %H:%M}.", rows,
            {"reference": finding.reference, "reference_n": finding.reference_n,
             "shift_sd": finding.shift_sd, "arl0_cases": round(arl), "alpha": t.drift_alpha,
             "change_case": by_site[site][finding.change_index].case_id,
             "alarm_case": by_site[site][finding.alarm_index].case_id,
             "first_alarm_case": by_site[site][finding.first_alarm_index].case_id},
        ))  # fmt: skip
    return alerts, params


def monitor_evaluate(records: Iterable[CaseRecord], *, thresholds: Thresholds) -> dict[str, Any]:
    """Everything the page and the beat task need, from one list of records."""
    records = _ordered(records)
    lim = thresholds.ood_limit
    drift, params = drift_alerts(records, thresholds=thresholds)
    return {
        "overall": accuracy_summary(records, ood_limit=lim),
        "by_site": group_summaries(records, by=lambda r: r.site, ood_limit=lim),
        "by_model": group_summaries(records, by=lambda r: r.model_version, ood_limit=lim),
        "alerts": threshold_alerts(records, thresholds=thresholds) + drift,
        "drift": params,
    }
