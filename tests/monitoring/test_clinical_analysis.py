"""The clinical monitor's analysis (framework-free): exact metrics on known inputs, window
checks, and the drift test: a degraded site is found, healthy streams raise nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from scipy.special import ndtri

from mahtqa.monitoring.clinical import (
    CaseRecord,
    Thresholds,
    accuracy_summary,
    confidence_histogram,
    drift_alerts,
    edge_cases,
    monitor_evaluate,
    threshold_alerts,
    timeline,
)
from mahtqa.monitoring.clinical_drift import (
    arl0,
    arl_markov,
    cusum,
    cusum_limit_reference,
    normal_scores,
    unit_scores,
)
from mahtqa.monitoring.clinical_sim import BASE_POINTS, simulate_stream

T0 = datetime(2026, 3, 1, 9, 0)


def case(i: int, decision: str | None, *, moves: dict[int, tuple[float, float]] | None = None,
         site: str = "s1", spacing=(0.1, 0.1), conf: float = 0.8, ood: float = 0.2,
         day: int = 0, model: str = "m 1") -> CaseRecord:  # fmt: skip
    ai = BASE_POINTS.copy()
    final = None
    if moves:
        final = ai.copy()
        for k, (dx, dy) in moves.items():
            final[k] += (dx, dy)
    return CaseRecord(
        case_id=f"c{i:03d}", at=T0 + timedelta(days=day, minutes=i), site=site,
        model_version=model, ai_points=ai, confidences=np.full(7, conf), ood_score=ood,
        decision=decision, final_points=final, spacing_mm=spacing, study_id=i,
    )  # fmt: skip


def test_exact_mre_sdr_and_rates():
    rows = [
        case(1, "corrected", moves={2: (30.0, 0.0)}),  # A off by 3 mm
        case(2, "accepted"),  # all 0 mm
        case(3, "rejected"),
        case(4, None),  # predicted, not reviewed
    ]
    s = accuracy_summary(rows)
    assert (s["cases"], s["reviewed"], s["accepted"], s["corrected"], s["rejected"]) == (
        4, 3, 1, 1, 1,
    )  # fmt: skip
    assert s["correction_rate"] == pytest.approx(1 / 3)
    assert s["rejection_rate"] == pytest.approx(1 / 3)
    assert s["mm_cases"] == 2
    assert s["mre_mm"] == pytest.approx(3.0 / 14)
    assert s["sdr"] == {"2.0": pytest.approx(1300 / 14), "2.5": pytest.approx(1300 / 14),
                        "3.0": pytest.approx(1300 / 14), "4.0": 100.0}  # fmt: skip
    assert s["per_landmark"]["A"]["mre_mm"] == pytest.approx(1.5)
    assert s["per_landmark"]["A"]["sdr"]["2.0"] == 50.0
    perfect = {"2.0": 100.0, "2.5": 100.0, "3.0": 100.0, "4.0": 100.0}
    assert s["per_landmark"]["S"] == {"mre_mm": 0.0, "sdr": perfect}


def test_errors_use_each_axis_spacing_and_skip_unknown_spacing():
    # rows 0.2 mm, columns 0.1 mm: 10 px along x is 1 mm, along y 2 mm
    rec = case(1, "corrected", moves={0: (10.0, 0.0), 1: (0.0, 10.0)}, spacing=(0.2, 0.1))
    assert rec.errors_mm()[:2] == pytest.approx([1.0, 2.0])
    assert case(2, "corrected", moves={0: (10.0, 0.0)}, spacing=None).errors_mm() is None
    s = accuracy_summary([rec, case(2, "accepted", spacing=None)])
    assert s["mm_cases"] == 1
    assert s["mre_mm"] == pytest.approx(3.0 / 7)


def test_ood_rate_confidence_and_histogram():
    rows = [case(i, None, ood=o, conf=c) for i, (o, c) in
            enumerate([(0.5, 0.95), (1.5, 0.05), (2.0, 0.55), (0.9, 0.45)])]  # fmt: skip
    s = accuracy_summary(rows, ood_limit=1.0)
    assert s["ood_rate"] == 0.5
    assert s["mean_confidence"] == pytest.approx(0.5)
    h = confidence_histogram(rows, bins=10)
    assert h["counts"] == [7, 0, 0, 0, 7, 7, 0, 0, 0, 7]
    assert h["edges"][0] == 0.0 and h["edges"][-1] == 1.0  # noqa: PT018


def test_by_site_by_model_timeline_and_edge_cases():
    rows = [
        case(1, "corrected", moves={3: (0.0, 50.0)}, site="s1", day=0),  # 5 mm on B
        case(2, "accepted", site="s2", day=0, model="m 2"),
        case(3, "corrected", moves={5: (20.0, 0.0)}, site="s2", day=1),  # 2 mm on Me
        case(4, "rejected", site="s1", day=1),
    ]
    report = monitor_evaluate(rows, thresholds=Thresholds())
    assert report["by_site"]["s1"]["corrected"] == 1
    assert report["by_site"]["s1"]["rejection_rate"] == 0.5
    assert report["by_model"]["m 2"]["accepted"] == 1
    days = timeline(rows, bucket="day")
    assert [d["label"] for d in days] == ["2026-03-01", "2026-03-02"]
    assert days[0]["mre_mm"] == pytest.approx(5.0 / 14)
    per2 = timeline(rows, bucket=3)
    assert [d["label"] for d in per2] == ["1-3", "4-4"]
    assert [d["cases"] for d in per2] == [3, 1]
    edges = edge_cases(rows)
    assert [(e["case_id"], e["landmark"]) for e in edges] == [("c001", "B"), ("c003", "Me")]
    assert edges[0]["max_error_mm"] == pytest.approx(5.0)
    assert edges[0]["moved"] == ["B"]


def test_window_thresholds_exact():
    t = Thresholds(window_cases=10, max_correction_rate=0.4, max_rejection_rate=0.15,
                   max_mre_mm=2.0, max_ood_rate=0.5, min_mm_cases=5)  # fmt: skip
    rows = [case(i, "corrected" if i < 5 else "accepted", moves={0: (30.0, 0.0)} if i < 5
                 else None, ood=1.2 if i < 6 else 0.1) for i in range(10)]  # fmt: skip
    alerts = {a.signal: a for a in threshold_alerts(rows, thresholds=t)}
    assert set(alerts) == {"correction_rate", "ood_rate"}
    assert alerts["correction_rate"].statistic == 0.5
    assert alerts["correction_rate"].key == "clinical:correction_rate:s1"
    assert alerts["correction_rate"].study_ids == list(range(10))
    assert alerts["ood_rate"].statistic == 0.6
    # nine cases are not a full window: nothing is judged
    assert threshold_alerts(rows[:9], thresholds=t) == []
    # exactly at the limit is not over it
    at_limit = [case(i, "corrected" if i < 4 else "accepted", moves={0: (30.0, 0.0)})
                for i in range(10)]  # fmt: skip
    assert threshold_alerts(at_limit, thresholds=t) == []
    # large corrections: the window MRE (5 cases x 40 mm on one landmark / 70) > 2 mm
    big = [case(i, "corrected", moves={0: (400.0, 0.0)}) for i in range(5)]
    big += [case(10 + i, "accepted") for i in range(5)]
    mre = [a for a in threshold_alerts(big, thresholds=t) if a.signal == "mre"]
    assert len(mre) == 1
    assert mre[0].statistic == pytest.approx(200 / 70, abs=1e-4)
    assert mre[0].threshold == 2.0


def test_markov_run_length_matches_siegmund_and_simulation():
    rng = np.random.default_rng(0)
    normal = ndtri((np.arange(4000) + 0.5) / 4000) - 0.5  # N(0, 1) quantiles, minus k
    for h in (4.0, 8.0, 12.0):  # 336 (the textbook value for h=4, k=0.5), 19k, 1.0M
        assert arl_markov(h, normal) == pytest.approx(arl0(h), rel=0.02)
    scores = unit_scores(rng.normal(size=200))
    draws = rng.choice(scores, size=400_000)
    run = cusum(draws, h=4.0)
    simulated = len(draws) / len(run.alarms)
    assert arl_markov(4.0, scores - 0.5) == pytest.approx(simulated, rel=0.1)


def test_normal_scores_of_the_reference_are_standard_and_ties_mid_ranked():
    rng = np.random.default_rng(1)
    ref = rng.gamma(2.0, 1.0, size=300)
    z = normal_scores(ref, ref)
    assert z.mean() == pytest.approx(0.0, abs=1e-9)
    assert z.std() == pytest.approx(1.0)
    tied = np.r_[np.zeros(240), rng.gamma(2.0, 1.0, size=60)]
    zt = normal_scores(np.array([0.0, 0.0, 100.0]), tied)
    assert zt[0] == zt[1] < 0 < zt[2]
    # a limit for a tied signal is higher than for a continuous one at the same run length
    assert cusum_limit_reference(tied, arl=50_000) > cusum_limit_reference(ref, arl=50_000)


def _any_alarm(records, t: Thresholds) -> list[str]:
    """Every alarm the monitor would raise over the stream: the drift chains' alarms at
    any time, and the window checks at every 25th case."""
    drift, _ = drift_alerts(records, thresholds=t, recent=10**9)
    found = [a.message for a in drift]
    for end in range(t.window_cases, len(records) + 1, 25):
        found += [a.message for a in threshold_alerts(records[:end], thresholds=t)]
    return found


def test_no_false_alarm_over_1000_healthy_cases():
    assert _any_alarm(simulate_stream(seed=2026, n=1000), Thresholds()) == []


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_healthy_streams_raise_nothing_across_seeds(seed):
    assert _any_alarm(simulate_stream(seed=seed, n=1000), Thresholds()) == []


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_degraded_site_is_detected_promptly(seed):
    drift_from = 900
    records = simulate_stream(seed=seed, n=1300, drift_site="site-c", drift_from=drift_from,
                              degradation=0.5)  # fmt: skip
    t = Thresholds()
    drift, params = drift_alerts(records, thresholds=t, recent=10**9)
    assert params["chains"] == 12
    assert {a.site for a in drift} == {"site-c"}
    assert {"drift_ood", "drift_image"} <= {a.signal for a in drift}
    index = {r.case_id: i for i, r in enumerate(records)}
    first = min(index[a.evidence["first_alarm_case"]] for a in drift)
    assert first >= drift_from  # nothing before the degradation
    assert (first - drift_from) / 3 <= 40  # site-c cases until the first alarm
    # and the monitor says so now (the alarm is in the last window)
    live = monitor_evaluate(records, thresholds=t)["alerts"]
    assert "site-c" in {a.site for a in live if a.kind == "drift"}
    assert all(a.site == "site-c" for a in live)


def test_a_new_site_degraded_from_its_first_case_is_measured_against_the_others():
    healthy = simulate_stream(seed=21, n=600, sites=("site-a", "site-b"))
    degraded = simulate_stream(seed=22, n=60, sites=("site-new",), drift_site="site-new",
                               degradation=1.0, start=T0 + timedelta(days=30))  # fmt: skip
    degraded = [CaseRecord(**{**r.__dict__, "case_id": "n" + r.case_id}) for r in degraded]
    drift, _ = drift_alerts(healthy + degraded, thresholds=Thresholds())
    hits = [a for a in drift if a.site == "site-new"]
    assert hits
    assert {a.evidence["reference"] for a in hits} == {"other sites"}
    assert all(a.site == "site-new" for a in drift)
