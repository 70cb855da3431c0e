"""Write the v2 bundle: networks trained on every ISBI case, with the error model and
risk-controlled thresholds fitted on the cross-validation's out-of-fold predictions.

    python -m mahtqa.engine.bundle_v2 --data ../shared/data/isbi2015-subset \
        --work var/train-v2 --crossval var/crossval/v2 \
        --bundle mahtqa/engine/bundled/mahtnet-v2.pt

The honest figures in the manifest (``metrics.out_of_fold``, ``metrics.hamedan_zero_shot``)
are the recipe's, measured by crossval on fold models that never saw the cases; the
bundled networks themselves are trained on all 100 cases with the same recipe.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, data_path, load_isbi_cases
from mahtqa.cephalometry.shape_model import ShapeModel, points_to_mm
from mahtqa.engine.bundle import _load_stage, analyse_cases, manifest_base, write_bundle
from mahtqa.engine.inference import LandmarkPredictor
from mahtqa.engine.ood import OodReference
from mahtqa.engine.preprocess import CANON_H, CANON_W
from mahtqa.engine.safety import deployable, nested, zero_shot
from mahtqa.engine.signals import PairStats

ALPHAS = (0.01, 0.02, 0.05, 0.1)
DELTA = 0.05


def risk_control(cases: list[dict]) -> dict:
    by_alpha, error_model = {}, None
    for alpha in ALPHAS:
        dep = deployable(cases, alpha=alpha, delta=DELTA)
        error_model = dep["error_model"]
        decision = {k: v for k, v in dep["decision"].items() if k != "tested"}
        by_alpha[f"{alpha:g}"] = {**decision, "confidence": f"{1 - DELTA:.0%}"}
    return {
        "method": "Learn-then-Test, fixed-sequence binomial tests; Clopper-Pearson upper bound",
        "delta": DELTA,
        "evaluated_on": f"{len(cases)} ISBI cases, cross-fitted out-of-fold risk scores",
        "unsafe": "any landmark > 4 mm",
        "by_alpha": by_alpha,
    }, error_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=data_path, required=True)
    parser.add_argument("--work", type=Path, required=True, help="the all-cases training run")
    parser.add_argument("--crossval", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--arch", default="mahtnet")
    parser.add_argument("--version", default="2.0.0")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    oof = json.loads((args.crossval / "oof.json").read_text())
    cases = load_isbi_cases(args.data)
    coarse, coarse_blob = _load_stage(args.work / f"coarse-{args.arch}.pt")
    fine, fine_blob = _load_stage(args.work / f"fine-{args.arch}.pt")
    from mahtqa.engine.train import FINE_CROP

    predictor = LandmarkPredictor(coarse=coarse, fine=fine, manifest={"fine_crop": FINE_CROP})
    analyses = analyse_cases(predictor, cases)
    shapes = np.stack([points_to_mm(c.mean, ISBI_SPACING_MM) for c in cases])
    shape_model = ShapeModel.fit(shapes)
    predictor.shape_model = shape_model
    shape_d = [predictor.shape_distance(a.canonical_points) for a in analyses]
    emb = np.stack([a.embedding for a in analyses])
    ood_ref = OodReference.fit(
        stats=[a.statistics for a in analyses], embeddings=emb, calibration_embeddings=emb,
        aspect=CANON_H / CANON_W,
        fov_mm=(CANON_H * ISBI_SPACING_MM[0], CANON_W * ISBI_SPACING_MM[1]),
        shape_high=max(6.0, 1.25 * max(shape_d)),
    )  # fmt: skip
    control, error_model = risk_control(oof["cases"])
    nested_5 = nested(oof["cases"], alpha=0.05, delta=DELTA)
    metrics = {
        "out_of_fold": {**oof["report"],
                        "safety_at_5pct": {k: v for k, v in nested_5.items()
                                           if k not in ("risk", "p2")}},
        "held_out": "out_of_fold",
    }  # fmt: skip
    if "hamedan_zero_shot" in oof:
        dep = deployable(oof["cases"], alpha=0.05, delta=DELTA)
        metrics["hamedan_zero_shot"] = {
            "spacing_mm": oof["hamedan_zero_shot"]["spacing_mm"],
            "per_fold_model": zero_shot(oof["hamedan_zero_shot"], dep),
        }
    manifest = manifest_base(
        name="mahtnet", version=args.version, arch=args.arch, coarse_blob=coarse_blob,
        fine_blob=fine_blob, n_cases=len(cases), data=args.data,
    )  # fmt: skip
    manifest["data"]["never_trained_on"] = "hamedan-dev (second hospital): zero-shot figures only"
    manifest |= {
        "split": {"train": [c.case_id for c in cases], "calibration": [], "test": []},
        "crossval": {"folds": oof["folds"], "recipe": oof["recipe"]},
        "training": {"steps": oof["recipe"]["steps"], "python": sys.version.split()[0],
                     "torch": str(torch.__version__), "platform": platform.platform()},
        "error_model": error_model,
        "pair_stats": PairStats.fit(shapes).to_dict(),
        "risk_control": control,
        "ood_reference": ood_ref.to_dict(),
        "shape_model": shape_model.to_dict(),
        "metrics": metrics,
    }  # fmt: skip
    write_bundle(args.bundle, coarse_blob, fine_blob, manifest)
    print(json.dumps({"risk_control": control["by_alpha"], "metrics": metrics}, indent=1))


if __name__ == "__main__":
    main()
