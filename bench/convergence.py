"""Convergence analyzer on labelled synthetic histories: precision and recall per defect.

    python bench/convergence.py --n-per-kind 100 --seed 2026

Generates ``labelled_set(n_per_kind, seed)`` (every defect kind, "healthy" and
"healthy_noisy"; the analyzer's thresholds were tuned on seed 0), runs
``analyze_history`` on each history and counts, per code, the histories where it was found
and expected (TP), found but not expected (FP) and expected but missed (FN). Prints a
table, the false-positive rate on the healthy kinds (histories with any finding) and the
median analysis time per history; exits 1 if a precision or recall is below the target.
No database, no Django.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-kind", type=int, default=100)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--target", type=float, default=0.9)
    a = ap.parse_args()
    import numpy as np

    from mahtqa.engine.convergence import CODES, analyze_history
    from mahtqa.engine.histories import labelled_set

    data = labelled_set(n_per_kind=a.n_per_kind, seed=a.seed)
    print(f"{len(data)} histories ({a.n_per_kind} per kind, seed {a.seed})")
    tp, fp, fn, flagged, seconds = Counter(), Counter(), Counter(), Counter(), []
    for series, labels, kind in data:
        started = time.perf_counter()
        found = analyze_history(series=series).codes()
        seconds.append(time.perf_counter() - started)
        flagged[kind] += bool(found - labels)
        for code in CODES:
            tp[code] += code in found and code in labels
            fp[code] += code in found and code not in labels
            fn[code] += code not in found and code in labels
    print("\n| defect | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|")
    ok = True
    for code in CODES:
        precision = tp[code] / max(1, tp[code] + fp[code])
        recall = tp[code] / max(1, tp[code] + fn[code])
        ok &= precision >= a.target and recall >= a.target
        print(f"| {code} | {tp[code]} | {fp[code]} | {fn[code]} | {precision:.3f} | {recall:.3f} |")
    print(
        "\n| healthy kind | histories | with a finding | false-positive rate |\n|---|---|---|---|"
    )
    for kind in ("healthy", "healthy_noisy"):
        print(f"| {kind} | {a.n_per_kind} | {flagged[kind]} | "
              f"{flagged[kind] / a.n_per_kind:.1%} |")  # fmt: skip
    points = np.median([len(s.get("train_loss", s.get("loss", []))) for s, _, _ in data])
    print(f"\nanalysis time per history: median {1000 * np.median(seconds):.2f} ms, "
          f"max {1000 * max(seconds):.2f} ms ({points:.0f} train points median)")  # fmt: skip
    print(f"target: precision and recall >= {a.target} per defect")
    print("ALL TARGETS MET" if ok else "SOME TARGETS MISSED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
