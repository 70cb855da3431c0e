"""Accuracy metrics (ISBI / CL-Detection conventions) and confidence diagnostics."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS, N_LANDMARKS

SDR_THRESHOLDS_MM: tuple[float, ...] = (2.0, 2.5, 3.0, 4.0)
GRADE_LIMITS_MM: tuple[tuple[str, float], ...] = (("A", 1.0), ("B", 1.5), ("C", 2.0))
Grade = Literal["A", "B", "C", "D"]


def radial_errors_mm(
    pred: np.ndarray, truth: np.ndarray, spacing_mm: tuple[float, float] | None
) -> np.ndarray:
    """Per-landmark radial errors, shape (7,) or (n, 7); mm per axis, px if spacing is None."""
    p = np.asarray(pred, dtype=float)
    t = np.asarray(truth, dtype=float)
    if p.shape != t.shape or p.shape[-1] != 2:
        raise ValueError(f"pred {p.shape} and truth {t.shape} must match and end in 2")
    d = p - t
    if spacing_mm is not None:
        row_mm, col_mm = spacing_mm
        d = d * np.array([col_mm, row_mm], dtype=float)
    return np.hypot(d[..., 0], d[..., 1])


def review_errors_mm(
    before: list[dict], after: list[dict], spacing_mm: tuple[float, float] | None
) -> np.ndarray | None:
    """Per-landmark distance of the AI's landmarks (``before``) to a reviewer's final ones
    (``after``), both as stored (``{"abbreviation", "x", "y", ...}`` rows); None when the
    final set lacks one of the AI's landmarks."""
    final = {lm["abbreviation"]: (lm["x"], lm["y"]) for lm in after}
    if not before or any(lm["abbreviation"] not in final for lm in before):
        return None
    ai = [(lm["x"], lm["y"]) for lm in before]
    truth = [final[lm["abbreviation"]] for lm in before]
    return radial_errors_mm(ai, truth, spacing_mm)


def _key(threshold: float) -> str:
    return f"{threshold:.1f}"


def sdr(errors: np.ndarray, thresholds: tuple[float, ...] = SDR_THRESHOLDS_MM) -> dict[str, float]:
    """Successful detection rate in % (share of errors strictly below each threshold)."""
    e = np.asarray(errors, dtype=float).ravel()
    if e.size == 0:
        raise ValueError("sdr of an empty error array")
    return {_key(t): float(np.mean(e < t) * 100.0) for t in thresholds}


def case_grade(errors_of_one_case: np.ndarray) -> Grade:
    """Grade of one case: A all <= 1.0 mm, B <= 1.5, C <= 2.0, D otherwise."""
    worst = float(np.max(np.asarray(errors_of_one_case, dtype=float)))
    for grade, limit in GRADE_LIMITS_MM:
        if worst <= limit:
            return grade  # type: ignore[return-value]
    return "D"


def summarize_errors(errors: np.ndarray) -> dict[str, Any]:
    """MRE, SD, SDR, per-landmark MRE/SDR and grade counts of an (n, 7) error array."""
    e = np.asarray(errors, dtype=float)
    if e.ndim != 2 or e.shape[1] != N_LANDMARKS or e.shape[0] == 0:
        raise ValueError(f"expected errors of shape (n, {N_LANDMARKS}), got {e.shape}")
    grades = {g: 0 for g in ("A", "B", "C", "D")}
    for row in e:
        grades[case_grade(row)] += 1
    return {
        "n_images": int(e.shape[0]),
        "mre_mm": float(e.mean()),
        "sd_mm": float(e.std(ddof=1)) if e.size > 1 else 0.0,
        "sdr": sdr(e),
        "per_landmark_mre_mm": {a: float(e[:, i].mean()) for i, a in enumerate(ABBREVIATIONS)},
        "per_landmark_sdr": {a: sdr(e[:, i]) for i, a in enumerate(ABBREVIATIONS)},
        "grades": grades,
    }


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    ranks = np.empty(values.size, dtype=float)
    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_vals[end + 1] == sorted_vals[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return ranks


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney; ties count half); NaN if one class is absent.

    Higher scores should indicate the positive class (``labels`` true / 1).
    """
    s = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in size")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def reliability_table(
    confidence: np.ndarray, errors: np.ndarray, bins: int = 5, threshold_mm: float = 2.0
) -> list[dict[str, Any]]:
    """Equal-width confidence bins over [min, max]: count, mean confidence/error, share > 2 mm."""
    c = np.asarray(confidence, dtype=float).ravel()
    e = np.asarray(errors, dtype=float).ravel()
    if c.shape != e.shape or c.size == 0:
        raise ValueError("confidence and errors must be non-empty and of equal size")
    if bins < 1:
        raise ValueError("bins must be >= 1")
    lo, hi = float(c.min()), float(c.max())
    edges = np.linspace(lo, hi, bins + 1)
    if hi > lo:
        idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)
    else:
        idx = np.zeros(c.size, dtype=int)
    rows = []
    for b in range(bins):
        mask = idx == b
        n = int(mask.sum())
        rows.append(
            {
                "bin_lo": float(edges[b]),
                "bin_hi": float(edges[b + 1]),
                "count": n,
                "mean_confidence": float(c[mask].mean()) if n else None,
                "mean_error_mm": float(e[mask].mean()) if n else None,
                "threshold_mm": threshold_mm,
                "share_over_threshold": float(np.mean(e[mask] > threshold_mm)) if n else None,
            }
        )
    return rows
