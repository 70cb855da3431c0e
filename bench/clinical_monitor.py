"""Clinical performance monitor: false alarms on healthy streams, detection delay on drift.

    python bench/clinical_monitor.py               # 20 seeds
    python bench/clinical_monitor.py --seeds 50

Framework-free (``mahtqa.monitoring.clinical`` on ``clinical_sim`` streams: three sites
in turn, every case reviewed, MonitorSettings defaults: window 50, drift_alpha 0.001).

Healthy: 1,000 cases per seed, evaluated as the beat task does, after every 25 cases
(``monitor_evaluate`` on the cases so far: window checks and the drift alarms of the last
window), so an alarm at any point of the stream counts. Reported: streams with any alarm,
and alarms in all.

Drift: 1,500 cases per seed (evaluated every 3 cases after the start); from case 600 on, one site's images are degraded
(``degradation`` d: noise and sharpness statistics shifted by 3d sd, errors x (1+d),
confidences lower, more rejections). Reported: share of seeds detected, and the delay
in that site's cases from the start of the degradation to the first alert (drift or
window check), median and worst.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mahtqa.monitoring.clinical import Thresholds, monitor_evaluate  # noqa: E402
from mahtqa.monitoring.clinical_sim import simulate_stream  # noqa: E402

STEP = 25


def stream_alerts(records, t: Thresholds, *, step: int = STEP) -> list[tuple[int, object]]:
    """(cases so far, alert) for every alert of every evaluation after ``step`` cases."""
    out = []
    for end in range(step, len(records) + 1, step):
        out += [(end, a) for a in monitor_evaluate(records[:end], thresholds=t)["alerts"]]
    return out


def healthy(seeds: int, t: Thresholds) -> dict:
    streams, alarms, kinds = 0, 0, {}
    for seed in range(seeds):
        found = stream_alerts(simulate_stream(seed=seed, n=1000), t)
        keys = {a.key for _, a in found}
        streams += bool(keys)
        alarms += len(keys)
        for k in keys:
            kinds[k] = kinds.get(k, 0) + 1
    return {"seeds": seeds, "streams_with_alarm": streams, "distinct_alarms": alarms,
            "keys": kinds}  # fmt: skip


def drift(seeds: int, t: Thresholds, degradation: float, *, start: int = 600) -> dict:
    delays, wrong = [], 0
    for seed in range(seeds):
        records = simulate_stream(seed=1000 + seed, n=start + 900, drift_site="site-c",
                                  drift_from=start, degradation=degradation)  # fmt: skip
        before = stream_alerts(records[:start], t)  # as the healthy run: every 25 cases
        other = False
        for end in range(start + 3, start + 901, 3):  # until the first alert at site-c
            alerts = monitor_evaluate(records[:end], thresholds=t)["alerts"]
            other = other or any(a.site != "site-c" for a in alerts)
            if any(a.site == "site-c" for a in alerts):
                delays.append((end - start) / 3)  # site-c has every third case
                break
        wrong += bool(before) or other
    return {
        "degradation": degradation, "seeds": seeds, "detected": len(delays),
        "median_delay_cases": statistics.median(delays) if delays else None,
        "worst_delay_cases": max(delays) if delays else None, "wrong_alarms": wrong,
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    t = Thresholds()
    t0 = time.perf_counter()
    h = healthy(args.seeds, t)
    print(f"healthy: {h['streams_with_alarm']} of {h['seeds']} streams of 1,000 cases raised "
          f"an alarm ({h['distinct_alarms']} distinct alarms: {h['keys']})")  # fmt: skip
    for d in (0.25, 0.5, 1.0):
        r = drift(args.seeds, t, d)
        print(f"drift d={d}: detected {r['detected']}/{r['seeds']}, delay in the site's cases "
              f"median {r['median_delay_cases']}, worst {r['worst_delay_cases']}; seeds with "
              f"an alarm before the drift or at another site: {r['wrong_alarms']}")  # fmt: skip
    print(f"elapsed {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
