"""Evaluate a weights file on a folder in the ISBI layout and print one JSON object.

    python -m mahtqa.engine.evaluate --data ../shared/data/isbi2015-subset \
        --spacing 0.3,0.3023 --cases heldout [--weights FILE]

``--spacing`` is ROW_MM,COL_MM of the folder's images. ``--cases``: ``all`` (default),
``heldout`` (the test split recorded in the weights' manifest) or ``ID,ID,...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mahtqa.cephalometry.isbi import available_case_ids, data_path, load_isbi_cases
from mahtqa.cephalometry.metrics import auroc, radial_errors_mm, reliability_table, summarize_errors
from mahtqa.engine.data import read_gray
from mahtqa.engine.inference import LandmarkPredictor

BUNDLED = Path(__file__).resolve().parent / "bundled" / "mahtnet-v1.pt"


def parse_spacing(text: str) -> tuple[float, float]:
    try:
        row, col = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError("spacing must be ROW_MM,COL_MM, e.g. 0.3,0.3023") from None
    if row <= 0 or col <= 0:
        raise argparse.ArgumentTypeError("spacing must be positive")
    return row, col


def select_cases(data: Path, which: str, manifest: dict) -> list[str]:
    if which == "all":
        return available_case_ids(data)
    if which == "heldout":
        return list(manifest["split"]["test"])
    return [c.strip() for c in which.split(",") if c.strip()]


def evaluate(
    *,
    data: Path,
    spacing: tuple[float, float],
    predictor: LandmarkPredictor,
    case_ids: list[str],
    batch: int = 4,
) -> dict:
    cases = load_isbi_cases(data, case_ids)
    preds = []
    for i in range(0, len(cases), batch):
        chunk = cases[i : i + batch]
        images = [read_gray(c.image_path) for c in chunk]
        preds.extend(predictor.predict_batch(images, spacing_mm=[spacing] * len(chunk)))
    points = np.array([[[lm.x, lm.y] for lm in p.landmarks] for p in preds])
    conf = np.array([[lm.confidence for lm in p.landmarks] for p in preds])
    errors = radial_errors_mm(points, np.stack([c.mean for c in cases]), spacing)
    result = summarize_errors(errors)
    bad = errors.ravel() > 2.0
    result["confidence_auroc_2mm"] = (
        auroc(1.0 - conf.ravel(), bad) if 0 < bad.sum() < bad.size else None
    )
    result["reliability"] = reliability_table(conf.ravel(), errors.ravel(), bins=5)
    ood = np.array([p.ood_score for p in preds])
    result["ood_score"] = {
        "mean": float(ood.mean()),
        "median": float(np.median(ood)),
        "max": float(ood.max()),
        "share_over_1": float((ood > 1).mean()),
    }
    result["model"] = {"name": predictor.name, "version": predictor.version}
    result["cases"] = [c.case_id for c in cases]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=data_path, required=True)
    parser.add_argument("--spacing", type=parse_spacing, required=True)
    parser.add_argument("--weights", type=Path, default=BUNDLED)
    parser.add_argument("--cases", default="all")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    predictor = LandmarkPredictor.load(args.weights, num_threads=args.threads)
    try:
        case_ids = select_cases(args.data, args.cases, predictor.manifest)
        result = evaluate(
            data=args.data, spacing=args.spacing, predictor=predictor, case_ids=case_ids
        )
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
