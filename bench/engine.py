"""MAHT-Net vs the U-Net baseline on the held-out split, speed, and the routing trade-off.

    python bench/engine.py --data ../shared/data/isbi2015-subset \
        --weights mahtqa/engine/bundled/mahtnet-v1.pt --baseline var/train-unet/unet.pt

Prints markdown tables (accuracy, speed, routing trade-off) and asserts the bundled
model's CPU latency at batch 1 is at most 500 ms per radiograph on 2 threads.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# bench/queue.py would shadow the standard library's queue module (torch needs it)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from mahtqa.cephalometry.isbi import ISBI_SPACING_MM, load_isbi_cases  # noqa: E402
from mahtqa.cephalometry.metrics import auroc, radial_errors_mm, summarize_errors  # noqa: E402
from mahtqa.cephalometry.plausibility import check_plausibility  # noqa: E402
from mahtqa.engine.data import read_gray  # noqa: E402
from mahtqa.engine.inference import LandmarkPredictor  # noqa: E402
from mahtqa.engine.model import count_parameters  # noqa: E402

LATENCY_BUDGET_MS = 500.0


def held_out(predictor, data: Path):
    cases = load_isbi_cases(data, predictor.manifest["split"]["test"])
    preds = []
    for i in range(0, len(cases), 4):
        chunk = cases[i : i + 4]
        preds += predictor.predict_batch(
            [read_gray(c.image_path) for c in chunk], spacing_mm=[ISBI_SPACING_MM] * len(chunk)
        )
    pts = np.array([p.points() for p in preds])
    conf = np.array([[lm.confidence for lm in p.landmarks] for p in preds])
    errors = radial_errors_mm(pts, np.stack([c.mean for c in cases]), ISBI_SPACING_MM)
    return cases, preds, pts, conf, errors


def speed(weights: Path, threads: int) -> dict:
    """Latency and memory in a fresh process (so peak RSS is this model's own)."""
    code = f"""
import json, resource, time, numpy as np, torch, cv2
from pathlib import Path
from mahtqa.engine.inference import LandmarkPredictor
p = LandmarkPredictor.load(Path({str(weights)!r}), num_threads={threads})
img = cv2.imread({str(ROOT.parent / "shared/data/isbi2015-subset/images/003.png")!r}, 0)
for _ in range(2): p.predict(img)
out = {{}}
for batch in (1, 8):
    imgs = [img] * batch
    times = []
    for _ in range(5 if batch == 1 else 2):
        t = time.perf_counter(); p.predict_batch(imgs); times.append((time.perf_counter() - t) / batch)
    out[f"batch{{batch}}_ms"] = 1000 * float(np.median(times))
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


V2_BUDGET_MS = 150.0


def latency_side_by_side(paths: dict[str, Path], threads: int, runs: int) -> dict[str, dict]:
    """The whole engine call (preprocessing, both stages, every confidence signal, OOD) at
    batch 1, models interleaved call by call so machine noise hits both alike; real
    radiographs (10 ISBI images in turn), ``runs`` timed calls per model after warm-up."""
    import time

    cases = load_isbi_cases(ROOT.parent / "shared/data/isbi2015-subset")[:10]
    images = [read_gray(c.image_path) for c in cases]
    predictors = {k: LandmarkPredictor.load(v, num_threads=threads) for k, v in paths.items()}
    for p in predictors.values():
        for img in images[:3]:
            p.predict(img, spacing_mm=ISBI_SPACING_MM)
    times: dict[str, list[float]] = {k: [] for k in predictors}
    stages: dict[str, list[dict]] = {k: [] for k in predictors}
    for i in range(runs):
        for k, p in predictors.items():
            t0 = time.perf_counter()
            r = p.predict(images[i % len(images)], spacing_mm=ISBI_SPACING_MM)
            times[k].append((time.perf_counter() - t0) * 1000)
            stages[k].append(r.timings_ms)
    out = {}
    for k in predictors:
        v = np.array(times[k])
        out[k] = {"median_ms": float(np.median(v)), "p90_ms": float(np.percentile(v, 90)),
                  "stages": {s: float(np.median([t[s] for t in stages[k]]))
                             for s in stages[k][0]}}  # fmt: skip
    return out


# The default routing policy (apps/clinical/services/policy.py DEFAULTS).
DEFAULT_MIN = 0.6
DEFAULT_PER_LANDMARK = {"S": 0.85, "Pog": 0.9, "Me": 0.85, "Gn": 0.85}
NAMES = ("S", "N", "A", "B", "Pog", "Me", "Gn")


def routing_tradeoff(preds, conf, errors, max_ood: float = 1.0) -> list[dict]:
    worst = errors.max(axis=1)
    findings_high = np.array(
        [
            any(
                f.severity == "high"
                for f in check_plausibility(np.array(p.points()), spacing_mm=ISBI_SPACING_MM)
            )
            for p in preds
        ]
    )
    ood = np.array([p.ood_score > max_ood for p in preds])
    rows = []
    default = np.array([DEFAULT_PER_LANDMARK.get(n, DEFAULT_MIN) for n in NAMES])
    for t in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, "default"]:
        limits = default if t == "default" else np.full(7, t)
        review = (conf < limits).any(axis=1) | findings_high | ood
        released = ~review
        rows.append(
            {
                "threshold": t,
                "reviewed_pct": 100 * review.mean(),
                "released_pct": 100 * released.mean(),
                "released_with_err_gt2_pct": 100 * (released & (worst > 2)).mean(),
                "released_with_err_gt4_pct": 100 * (released & (worst > 4)).mean(),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/isbi2015-subset")
    ap.add_argument("--weights", type=Path, default=ROOT / "mahtqa/engine/bundled/mahtnet-v1.pt")
    ap.add_argument("--baseline", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-speed", action="store_true", help="accuracy and routing only")
    ap.add_argument("--v2", type=Path, default=None, help="latency: v2 beside --weights (v1)")
    ap.add_argument("--runs", type=int, default=25)
    args = ap.parse_args()
    if args.v2:
        res = latency_side_by_side({"v1": args.weights, "v2": args.v2}, args.threads, args.runs)
        print(f"Engine latency, batch 1, {args.threads} threads, {args.runs} interleaved calls "
              "each after warm-up (whole engine call)\n")  # fmt: skip
        names = list(res["v1"]["stages"])
        print("| model | median ms | p90 ms | " + " | ".join(names) + " |")
        print("|---|---|---|" + "---|" * len(names))
        for k, r in res.items():
            print(f"| {k} | {r['median_ms']:.1f} | {r['p90_ms']:.1f} | "
                  + " | ".join(f"{r['stages'][n]:.1f}" for n in names) + " |")  # fmt: skip
        ratio = res["v2"]["median_ms"] / V2_BUDGET_MS
        print(f"\nv2 median {res['v2']['median_ms']:.1f} ms / budget {V2_BUDGET_MS:.0f} ms = "
              f"{ratio:.2f}; v2/v1 = {res['v2']['median_ms'] / res['v1']['median_ms']:.2f}")  # fmt: skip
        assert ratio <= 1.0, "v2 engine slower than 150 ms per radiograph"
        return
    models = {"MAHT-Net (bundled)": args.weights}
    if args.baseline:
        models["U-Net baseline"] = args.baseline
    print(
        "| model | params | MRE mm | SDR@2 % | SDR@4 % | conf AUROC (>2 mm) | CPU ms b1 | CPU ms/img b8 | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    bundled = None
    for label, path in models.items():
        predictor = LandmarkPredictor.load(path, num_threads=args.threads)
        cases, preds, _, conf, errors = held_out(predictor, args.data)
        summary = summarize_errors(errors)
        a = auroc(1 - conf.ravel(), errors.ravel() > 2.0)
        params = count_parameters(predictor.coarse) + count_parameters(predictor.fine)
        sp = {"batch1_ms": float("nan"), "batch8_ms": float("nan"), "peak_rss_mb": float("nan")}
        if not args.no_speed:
            sp = speed(path, args.threads)
        print(
            f"| {label} | {params / 1e6:.2f} M | {summary['mre_mm']:.3f} | {summary['sdr']['2.0']:.1f} "
            f"| {summary['sdr']['4.0']:.1f} | {a:.3f} | {sp['batch1_ms']:.0f} | {sp['batch8_ms']:.0f} "
            f"| {sp['peak_rss_mb']:.0f} |"
        )
        if bundled is None:
            bundled = (predictor, cases, preds, conf, errors, sp, summary)
    predictor, cases, preds, conf, errors, sp, summary = bundled
    print(
        f"\nHeld-out cases: {len(cases)}; per landmark MRE (mm): "
        + ", ".join(f"{k} {v:.2f}" for k, v in summary["per_landmark_mre_mm"].items())
    )
    print(
        "\nRouting trade-off on the held-out cases (a case is reviewed if any landmark's "
        "confidence < threshold, a high finding, or OOD score > 1):\n"
    )
    print(
        "| min confidence | reviewed % | released % | released with an error > 2 mm % | released with an error > 4 mm % |"
    )
    print("|---|---|---|---|---|")
    for r in routing_tradeoff(preds, conf, errors):
        t = r["threshold"]
        label = (
            f"{t:.1f}"
            if t != "default"
            else (
                f"default policy: {DEFAULT_MIN}, "
                + ", ".join(f"{k} {v}" for k, v in DEFAULT_PER_LANDMARK.items())
            )
        )
        print(
            f"| {label} | {r['reviewed_pct']:.0f} | {r['released_pct']:.0f} "
            f"| {r['released_with_err_gt2_pct']:.0f} | {r['released_with_err_gt4_pct']:.0f} |"
        )
    if args.no_speed:
        return
    ratio = sp["batch1_ms"] / LATENCY_BUDGET_MS
    print(
        f"\nCPU latency batch 1: {sp['batch1_ms']:.0f} ms / budget {LATENCY_BUDGET_MS:.0f} ms = {ratio:.2f}"
    )
    assert ratio <= 1.0, "bundled model slower than 500 ms per radiograph"


if __name__ == "__main__":
    main()
