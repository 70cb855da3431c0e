"""Finalize a training run: calibrate confidence, fit the OOD reference and the
shape model, measure the held-out split, and write the self-contained bundle
(weights + manifest + sha256)."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, dataset_version_of, load_isbi_cases
from mahtqa.cephalometry.landmarks import LANDMARKS, N_LANDMARKS
from mahtqa.cephalometry.metrics import auroc, radial_errors_mm, reliability_table, summarize_errors
from mahtqa.cephalometry.shape_model import ShapeModel, points_to_mm
from mahtqa.engine.confidence import FEATURES, ConfidenceModel
from mahtqa.engine.data import Augmenter, read_gray
from mahtqa.engine.inference import FORMAT_VERSION, LandmarkPredictor
from mahtqa.engine.model import build_model
from mahtqa.engine.ood import OodReference
from mahtqa.engine.preprocess import (
    CANON_H,
    CANON_W,
    COARSE_SCALE,
    NORM_HIGH_PCT,
    NORM_LOW_PCT,
)

BATCH = 4


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def analyse_cases(predictor: LandmarkPredictor, cases) -> list:
    out = []
    for i in range(0, len(cases), BATCH):
        images = [read_gray(c.image_path) for c in cases[i : i + BATCH]]
        out.extend(predictor.analyse_batch(images))
    return out


def _load_stage(path: Path):
    blob = torch.load(path, map_location="cpu", weights_only=True)
    net = build_model(blob["config"])
    net.load_state_dict(blob["state"])
    return net, blob


def _errors(analyses, cases) -> np.ndarray:
    pred = np.stack([a.frame.to_original(a.canonical_points) for a in analyses])
    truth = np.stack([c.mean for c in cases])
    return radial_errors_mm(pred, truth, ISBI_SPACING_MM)


def finalize(
    *,
    data: Path,
    work: Path,
    arch: str,
    split: dict,
    bundle: Path | None,
    name: str,
    version: str,
    seed: int,
    steps: dict,
) -> dict:
    coarse, coarse_blob = _load_stage(work / f"coarse-{arch}.pt")
    fine, fine_blob = _load_stage(work / f"fine-{arch}.pt")
    from mahtqa.engine.train import FINE_CROP

    predictor = LandmarkPredictor(coarse=coarse, fine=fine, manifest={"fine_crop": FINE_CROP})
    cases = {k: load_isbi_cases(data, v) for k, v in split.items()}
    analyses = {k: analyse_cases(predictor, v) for k, v in cases.items()}

    shapes = np.stack([points_to_mm(c.mean, ISBI_SPACING_MM) for c in cases["train"]])
    shape_model = ShapeModel.fit(shapes)
    predictor.shape_model = shape_model

    cal_feat, cal_ok, cal_lm, cal_group = calibration_set(
        predictor, cases["calibration"], seed=seed
    )
    ridge, cv, oof_logits = choose_ridge(cal_feat, cal_ok, cal_lm, cal_group)
    conf_model = ConfidenceModel.fit(cal_feat, cal_lm, cal_ok, ridge=ridge)
    conf_model = conf_model.with_platt(oof_logits, cal_ok)

    cal_shape = [predictor.shape_distance(a.canonical_points) for a in analyses["calibration"]]
    ood_ref = OodReference.fit(
        stats=[a.statistics for a in analyses["train"]],
        embeddings=np.stack([a.embedding for a in analyses["train"]]),
        calibration_embeddings=np.stack([a.embedding for a in analyses["calibration"]]),
        aspect=CANON_H / CANON_W,
        fov_mm=(CANON_H * ISBI_SPACING_MM[0], CANON_W * ISBI_SPACING_MM[1]),
        shape_high=max(6.0, 1.25 * max(cal_shape)),
    )
    manifest = {
        **manifest_base(
            name=name,
            version=version,
            arch=arch,
            coarse_blob=coarse_blob,
            fine_blob=fine_blob,
            n_cases=sum(len(v) for v in split.values()),
            data=data,
        ),
        "split": split,
        "training": {
            "seed": seed,
            "steps": steps,
            "python": sys.version.split()[0],
            "torch": str(torch.__version__),
            "platform": platform.platform(),
        },
        "confidence": {
            **conf_model.to_dict(),
            "ridge": ridge,
            "ridge_cv_auroc": cv,
            "calibration_samples": int(len(cal_ok)),
            "calibration_errors_over_2mm": int((~cal_ok).sum()),
        },
        "ood_reference": ood_ref.to_dict(),
        "shape_model": shape_model.to_dict(),
    }
    predictor.manifest = manifest
    predictor.confidence_model = conf_model
    predictor.ood_reference = ood_ref
    manifest["metrics"] = {
        k: split_metrics(predictor, analyses[k], cases[k]) for k in ("calibration", "test")
    }
    manifest["metrics"]["held_out"] = "test"
    (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if bundle is not None:
        write_bundle(bundle, coarse_blob, fine_blob, manifest)
    print(json.dumps(manifest["metrics"]["test"], indent=1))
    return manifest


CAL_AUGMENTED_COPIES = 3
RIDGES = (1.0, 3.0, 10.0, 30.0, 100.0)


def manifest_base(
    *, name: str, version: str, arch: str, coarse_blob: dict, fine_blob: dict, n_cases: int,
    data: Path | None = None,
) -> dict:  # fmt: skip
    """What every bundle's manifest says about itself, its input and its data (v1 and v2)."""
    from mahtqa.engine.train import FINE_CROP

    return {
        "name": name,
        "version": version,
        "architecture": arch,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "landmarks": [
            {"abbreviation": lm.abbreviation, "name": lm.name, "isbi_number": lm.isbi_number}
            for lm in LANDMARKS
        ],
        "coordinates": "x = column, y = row, origin at the top-left corner of the top-left pixel",
        "input": {
            "canonical_size": [CANON_H, CANON_W],
            "coarse_scale": COARSE_SCALE,
            "fine_crop": FINE_CROP,
            "letterbox": "aspect kept, centred, zero padding",
        },
        "fine_crop": FINE_CROP,
        "normalisation": {"percentiles": [NORM_LOW_PCT, NORM_HIGH_PCT], "range": [0.0, 1.0]},
        "config": {"coarse": coarse_blob["config"], "fine": fine_blob["config"]},
        "data": {
            "source": "ISBI 2015 cephalometric challenge, cases 001-100, resized to 640 x 800",
            "spacing_mm": list(ISBI_SPACING_MM),
            "truth": "mean of senior and junior annotators",
            "n_cases": n_cases,
            "device": "one device (Soredex CRANEX 3+ Ceph, per the challenge); one hospital",
            # the registered dataset version it was trained on, when read from one
            "dataset_version": dataset_version_of(data) if data is not None else None,
        },
    }


def calibration_set(predictor: LandmarkPredictor, cases, *, seed: int):
    """Confidence features and outcomes on the calibration cases, plus seeded mildly
    augmented copies of them (more examples of large errors than 15 cases hold)."""
    rng = np.random.default_rng(seed + 99)
    aug = Augmenter(rng, rotate_deg=5, scale=(0.95, 1.05), shift_px=20)
    feats, errs, groups = [], [], []
    for g, case in enumerate(cases):
        image = read_gray(case.image_path)
        variants = [(image, case.mean)]
        for _ in range(CAL_AUGMENTED_COPIES):
            warped, pts = aug(image.astype(np.float32) / 255, case.mean)
            variants.append(((warped * 255).astype(np.uint8), pts))
        for img, truth in variants:
            a = predictor.analyse_batch([img])[0]
            feats.append(a.features)
            errs.append(
                radial_errors_mm(a.frame.to_original(a.canonical_points), truth, ISBI_SPACING_MM)
            )
            groups.append(np.full(N_LANDMARKS, g))
    feats = np.concatenate(feats)
    ok = np.concatenate(errs) <= 2.0
    lm = np.tile(np.arange(N_LANDMARKS), len(ok) // N_LANDMARKS)
    return feats, ok, lm, np.concatenate(groups)


def choose_ridge(feats, ok, lm, groups) -> tuple[float, dict, np.ndarray]:
    """Ridge strength by leave-one-case-out AUROC on the calibration set only.

    Returns the ridge, the AUROC per ridge, and the chosen ridge's out-of-fold logits
    (for the Platt scaling)."""
    scores, logits = {}, {}
    for ridge in RIDGES:
        pred = np.empty(len(ok))
        for g in np.unique(groups):
            held = groups == g
            model = ConfidenceModel.fit(feats[~held], lm[~held], ok[~held], ridge=ridge)
            pred[held] = model.logit(feats[held], lm[held])
        scores[str(ridge)] = auroc(-pred, ~ok)
        logits[ridge] = pred
    best = max(RIDGES, key=lambda r: scores[str(r)])
    return best, scores, logits[best]


def split_metrics(predictor: LandmarkPredictor, analyses, cases) -> dict:
    errors = _errors(analyses, cases)
    summary = summarize_errors(errors)
    preds = [predictor.finish(a, None) for a in analyses]
    conf = np.array([[lm.confidence for lm in p.landmarks] for p in preds])
    bad = errors.ravel() > 2.0
    summary["confidence_auroc_2mm"] = (
        auroc(1 - conf.ravel(), bad) if 0 < bad.sum() < bad.size else None
    )
    feats = np.concatenate([a.features for a in analyses])
    summary["feature_auroc_2mm"] = (
        {
            name: auroc(feats[:, i] * (-1 if name.endswith("peak") else 1), bad)
            for i, name in enumerate(FEATURES)
        }
        if 0 < bad.sum() < bad.size
        else {}
    )
    summary["reliability"] = reliability_table(conf.ravel(), errors.ravel(), bins=5)
    ood = [predictor.finish(a, ISBI_SPACING_MM).ood_score for a in analyses]
    summary["ood_score"] = {"mean": float(np.mean(ood)), "max": float(np.max(ood))}
    return summary


def write_bundle(path: Path, coarse_blob: dict, fine_blob: dict, manifest: dict) -> str:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {
        "format": FORMAT_VERSION,
        "coarse": {"config": coarse_blob["config"], "state": coarse_blob["state"]},
        "fine": {"config": fine_blob["config"], "state": fine_blob["state"]},
        "manifest": manifest,
    }
    torch.save(blob, path)
    digest = sha256_of(path)
    # The JSON beside the weights is for people and the registry; the large fitted
    # arrays (OOD reference, shape model) stay inside the weights file only.
    summary = {k: v for k, v in manifest.items() if k not in ("ood_reference", "shape_model")}
    summary["embedded_in_weights"] = ["ood_reference", "shape_model", "confidence"]
    path.with_suffix(".json").write_text(json.dumps({**summary, "sha256": digest}, indent=1))
    path.with_suffix(".sha256").write_text(f"{digest}  {path.name}\n")
    return digest
