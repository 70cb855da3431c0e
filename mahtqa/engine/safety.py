"""Is a released result safe? Error prediction and risk-controlled routing, scored on
cases they were not fitted on.

    python -m mahtqa.engine.safety --oof var/crossval/v2/oof.json \
        --alpha 0.05 --delta 0.05 --plots docs/img --out var/crossval/v2/safety.json

Nested cross-fitting over crossval's folds: for each outer fold, the error model is
fitted on the other folds' out-of-fold predictions, the release threshold by
Learn-then-Test on *their* scores (themselves cross-fitted one level down), and both
are applied to the outer fold. So every AUROC, release rate and unsafe-release count
below is measured on cases that neither the networks, the error model nor the
threshold saw. The deployable error model and threshold are then fitted on all cases.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS, N_LANDMARKS
from mahtqa.cephalometry.metrics import auroc, reliability_table
from mahtqa.engine.error_model import ErrorModel, stack
from mahtqa.engine.risk import learn_then_test, tradeoff_curve

UNSAFE_MM = 4.0


def _fit(cases: list[dict]) -> ErrorModel:
    signals, landmark, errors, _ = stack(cases)
    return ErrorModel.fit(signals, landmark, errors)


def _scores(model: ErrorModel, cases: list[dict]) -> np.ndarray:
    return np.array([model.case_risk(np.asarray(c["signals"], dtype=float)) for c in cases])


def _unsafe(cases: list[dict]) -> np.ndarray:
    return np.array([max(c["errors_mm"]) > UNSAFE_MM for c in cases])


def cross_fitted_scores(cases: list[dict]) -> np.ndarray:
    """Each case's risk from an error model fitted on the other folds."""
    folds = sorted({c["fold"] for c in cases})
    out = np.empty(len(cases))
    for f in folds:
        held = np.array([c["fold"] == f for c in cases])
        model = _fit([c for c, h in zip(cases, held, strict=True) if not h])
        out[held] = _scores(model, [c for c, h in zip(cases, held, strict=True) if h])
    return out


def nested(cases: list[dict], *, alpha: float, delta: float) -> dict:
    folds = sorted({c["fold"] for c in cases})
    p2 = np.empty((len(cases), N_LANDMARKS))
    risk = np.empty(len(cases))
    released = np.zeros(len(cases), dtype=bool)
    thresholds = {}
    for f in folds:
        held = np.array([c["fold"] == f for c in cases])
        inner = [c for c, h in zip(cases, held, strict=True) if not h]
        outer = [c for c, h in zip(cases, held, strict=True) if h]
        model = _fit(inner)
        decision = learn_then_test(
            cross_fitted_scores(inner), _unsafe(inner), alpha=alpha, delta=delta
        )
        thresholds[f] = decision.threshold
        risk[held] = _scores(model, outer)
        for i, c in zip(np.flatnonzero(held), outer, strict=True):
            p2[i] = model.probability(np.asarray(c["signals"]), np.arange(N_LANDMARKS), 2.0)
        if decision.threshold is not None:
            released[held] = risk[held] <= decision.threshold
    errors = np.array([c["errors_mm"] for c in cases])
    unsafe = errors.max(axis=1) > UNSAFE_MM
    per_landmark = {
        abbr: _auc(p2[:, k], errors[:, k] > 2.0) for k, abbr in enumerate(ABBREVIATIONS)
    }
    return {
        **_label_noise(cases, unsafe, released, risk),
        "per_landmark_auroc_2mm": per_landmark,
        "pooled_auroc_2mm": _auc(p2.ravel(), errors.ravel() > 2.0),
        "case_auroc_4mm": _auc(risk, unsafe),
        "reliability_2mm": reliability_table(1 - p2.ravel(), errors.ravel(), bins=5),
        "released": int(released.sum()),
        "release_rate": float(released.mean()),
        "unsafe_released": int((released & unsafe).sum()),
        "unsafe_cases": int(unsafe.sum()),
        "thresholds": thresholds,
        "risk": risk.tolist(),
        "p2": p2.tolist(),
    }


def _label_noise(cases: list[dict], unsafe, released, risk) -> dict:
    """How much of "unsafe" (a landmark > 4 mm from the annotators' mean) is the
    annotators' own disagreement: the unsafe cases whose worst landmark the two
    annotators placed > 4 mm apart, and the figures against the closer annotator.
    Empty for records without both annotators (crossval before these fields)."""
    if not all("nearest_errors_mm" in c and "annotators_apart_mm" in c for c in cases):
        return {}
    errors = np.array([c["errors_mm"] for c in cases])
    apart = np.array([c["annotators_apart_mm"] for c in cases])
    worst = errors.argmax(axis=1)
    near = np.array([max(c["nearest_errors_mm"]) > UNSAFE_MM for c in cases])
    return {
        "unsafe_annotators_apart": int(
            (unsafe & (apart[np.arange(len(cases)), worst] > UNSAFE_MM)).sum()
        ),
        "unsafe_cases_nearest_annotator": int(near.sum()),
        "unsafe_released_nearest_annotator": int((released & near).sum()),
        "case_auroc_4mm_nearest_annotator": _auc(risk, near),
    }


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        return None
    return round(float(auroc(np.asarray(scores), labels)), 4)


def deployable(cases: list[dict], *, alpha: float, delta: float) -> dict:
    """The error model on all cases and the threshold from their cross-fitted scores."""
    model = _fit(cases)
    scores = cross_fitted_scores(cases)
    decision = learn_then_test(scores, _unsafe(cases), alpha=alpha, delta=delta)
    return {"error_model": model.to_dict(), "decision": decision.as_dict(),
            "curve": tradeoff_curve(scores, _unsafe(cases))}  # fmt: skip


def zero_shot(hamedan: dict, dep: dict) -> dict:
    """The deployable model and threshold on the second hospital (each fold model)."""
    model = ErrorModel.from_dict(dep["error_model"])
    t = dep["decision"]["threshold"]
    out = {}
    for f, cases in hamedan["cases"].items():
        scores = _scores(model, cases)
        unsafe = _unsafe(cases)
        rel = scores <= t if t is not None else np.zeros(len(cases), bool)
        errors = np.array([c["errors_mm"] for c in cases])
        out[f] = {"mre_mm": round(float(errors.mean()), 3),
                  "sdr_2mm": round(float((errors <= 2).mean()), 3),
                  "cases_any_over_4mm": int(unsafe.sum()), "released": int(rel.sum()),
                  "unsafe_released": int((rel & unsafe).sum()),
                  "case_auroc_4mm": _auc(scores, unsafe)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--oof", type=Path, required=True)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--delta", type=float, default=0.05)
    parser.add_argument("--plots", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    data = json.loads(args.oof.read_text())
    cases = data["cases"]
    result = {"nested": nested(cases, alpha=args.alpha, delta=args.delta),
              "deployable": deployable(cases, alpha=args.alpha, delta=args.delta),
              "oof_report": data["report"]}  # fmt: skip
    if "hamedan_zero_shot" in data:
        result["hamedan_zero_shot"] = zero_shot(data["hamedan_zero_shot"], result["deployable"])
    if args.plots:
        from mahtqa.engine.plots import reliability_png, tradeoff_png

        args.plots.mkdir(parents=True, exist_ok=True)
        reliability_png(result["nested"]["reliability_2mm"], args.plots / "reliability-v2.png")
        tradeoff_png(result["deployable"]["curve"], args.plots / "routing-tradeoff-v2.png")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1))
    brief = {k: v for k, v in result["nested"].items() if k not in ("risk", "p2")}
    brief["deployable"] = {k: v for k, v in result["deployable"]["decision"].items()
                           if k != "tested"}  # fmt: skip
    brief["hamedan_zero_shot"] = result.get("hamedan_zero_shot")
    print(json.dumps(brief, indent=1))


if __name__ == "__main__":
    main()
