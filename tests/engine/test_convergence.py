"""The convergence analyzer: every detector on small known inputs, the labelled synthetic
histories (scored on seed 123; the thresholds were tuned on seed 0) and a real short
training of the coarse network whose learning rate is raised 100x mid-run."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mahtqa.engine.convergence import (
    CODES,
    ConvergenceFinding,
    ConvergenceThresholds,
    analyze_history,
)
from mahtqa.engine.histories import KINDS, labelled_set, make_history

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "isbi2015-subset"
STEPS = np.arange(200)
HEALTHY = 2 * np.exp(-STEPS / 40) + 0.05
COSINE = 1e-3 * 0.5 * (1 + np.cos(np.pi * STEPS / 199))


def pairs(steps, values) -> list[tuple[int, float]]:
    return [(int(s), float(v)) for s, v in zip(steps, values, strict=True)]


def only(report, code: str) -> ConvergenceFinding:
    found = [f for f in report.findings if f.code == code]
    assert found, report.as_dict()
    return found[0]


def test_healthy_run_has_no_findings():
    lr = 1e-3 * np.where(
        STEPS < 10, (STEPS + 1) / 10, 0.5 * (1 + np.cos(np.pi * (STEPS - 10) / 190))
    )
    rng = np.random.default_rng(0)
    for noise in (0.0, 0.1):
        train = HEALTHY * np.exp(rng.normal(0, noise, len(STEPS)))
        series = {"train_loss": pairs(STEPS, train), "lr": pairs(STEPS, lr),
                  "val_loss": pairs(STEPS[::10], 1.1 * HEALTHY[::10]),
                  "grad_norm": pairs(STEPS, 1 + 0.5 * np.exp(-STEPS / 50))}  # fmt: skip
        report = analyze_history(series=series)
        assert report.findings == ()
        assert report.early_stopping_step is None
        assert report.steps_seen == 200


def test_nan_is_a_critical_explosion_at_the_first_bad_step():
    loss = HEALTHY.copy()
    loss[120:] = np.nan
    loss[130] = np.inf
    report = analyze_history(series={"train_loss": pairs(STEPS * 5, loss)})
    f = only(report, "explosion")
    assert (f.severity, f.start_step, f.end_step) == ("critical", 600, 600)
    assert f.statistic == "non-finite train-loss values"
    assert f.value == 80
    assert report.findings[0] is f  # the most severe first
    assert any("gradient clipping" in r for r in f.recommendations)


def test_loss_ten_times_its_running_minimum_is_an_explosion_from_the_start_of_the_climb():
    loss = np.exp(-STEPS / 20) + 0.01
    loss[100:] *= 3.0 ** np.minimum(STEPS[100:] - 99, 8)
    report = analyze_history(series={"train_loss": pairs(STEPS, loss)})
    assert report.codes() == {"explosion"}
    f = next(f for f in report.findings if f.statistic.startswith("train loss / running minimum"))
    assert (f.severity, f.start_step, f.end_step) == ("error", 100, 102)
    assert f.value >= 10
    assert f.threshold == 10


def test_grad_norm_explosion():
    grad = np.ones(200)
    grad[80] = 5000.0
    series = {"train_loss": pairs(STEPS, HEALTHY), "grad_norm": pairs(STEPS, grad)}
    f = only(analyze_history(series=series), "explosion")
    assert (f.start_step, f.end_step, f.value, f.threshold) == (80, 80, 5000.0, 1000.0)
    assert f.statistic == "grad norm / median of the earlier grad norms"


def test_bounded_loss_back_at_chance_level_is_an_explosion():
    loss = 10 * (0.45 + 0.55 * np.exp(-STEPS / 10))
    loss[60:] = 10.5  # spatial cross-entropy diverged to chance: it cannot rise 10x
    report = analyze_history(series={"train_loss": pairs(STEPS, loss)})
    assert report.codes() == {"explosion"}
    f = only(report, "explosion")
    assert 58 <= f.start_step <= 60
    assert f.end_step <= 63
    assert f.statistic == "share of the smoothed loss's fall (log) lost again"


def test_plateau_near_the_initial_loss_but_not_a_converged_run():
    stuck = analyze_history(series={"train_loss": pairs(STEPS, 0.8 + 0.2 * np.exp(-STEPS / 10))})
    f = only(stuck, "plateau")
    assert stuck.codes() == {"plateau"}
    assert (f.start_step, f.end_step) == (140, 199)
    assert f.statistic == "relative decrease of the train loss over the window (log-linear fit)"
    assert f.value < f.threshold == 0.1
    converged = 0.02 + 0.98 * np.exp(-STEPS / 20)  # fell 98 % and flattened
    assert analyze_history(series={"train_loss": pairs(STEPS, converged)}).findings == ()


def test_oscillation_but_not_noise():
    swinging = np.exp(-STEPS / 100) * np.exp(0.6 * (-1.0) ** STEPS)
    report = analyze_history(series={"train_loss": pairs(STEPS, swinging)})
    f = only(report, "oscillation")
    assert report.codes() == {"oscillation"}
    assert (f.start_step, f.end_step) == (0, 199)
    assert f.statistic.startswith("robust sd")
    assert f.value > f.threshold == 0.3
    noisy = HEALTHY * np.exp(np.random.default_rng(1).normal(0, 0.15, 200))
    assert analyze_history(series={"train_loss": pairs(STEPS, noisy)}).findings == ()


def test_val_divergence_and_early_stopping():
    train, vs = np.exp(-STEPS / 80), STEPS[::10]
    val = np.where(vs <= 80, 1.2 * train[vs], 1.2 * train[80] * np.exp(0.005 * (vs - 80)))
    report = analyze_history(series={"train_loss": pairs(STEPS, train), "val_loss": pairs(vs, val)})
    f = only(report, "val_divergence")
    assert report.codes() == {"val_divergence"}  # not overfitting as well
    assert (f.severity, f.start_step, f.end_step) == ("error", 90, 190)
    assert f.statistic.startswith("relative rise of the val loss")
    assert f.value > 0.5
    assert report.early_stopping_step == 90


def test_overfitting_when_val_stalls_while_train_improves():
    train, vs = np.exp(-STEPS / 80), STEPS[::10]
    val = np.where(vs <= 100, 1.1 * train[vs], 1.1 * train[100])
    report = analyze_history(series={"train_loss": pairs(STEPS, train), "val_loss": pairs(vs, val)})
    f = only(report, "overfitting")
    assert report.codes() == {"overfitting"}
    assert (f.start_step, f.end_step) == (133, 190)
    assert f.statistic.startswith("relative generalisation gap")
    assert f.value > 1
    assert report.early_stopping_step is None  # val never worsens


def test_lr_schedule_rules():
    spiky = HEALTHY.copy()
    spiky[1:3] *= 8
    report = analyze_history(series={"train_loss": pairs(STEPS, spiky), "lr": pairs(STEPS, COSINE)})
    f = only(report, "lr_schedule")
    assert (f.start_step, f.end_step) == (0, 1)
    assert "no warm-up" in f.message
    long = np.arange(0, 2001, 10)
    series = {"loss": pairs(long, 2 * np.exp(-long / 400) + 0.05),
              "learning_rate": pairs(long, np.full(len(long), 1e-3))}  # fmt: skip
    f = only(analyze_history(series=series), "lr_schedule")
    assert (f.severity, f.start_step, f.end_step, f.value) == ("info", 0, 2000, 1.0)
    jumped = COSINE.copy()
    jumped[150:] *= 10
    report = analyze_history(
        series={"train_loss": pairs(STEPS, HEALTHY), "lr": pairs(STEPS, jumped)}
    )
    f = only(report, "lr_schedule")
    assert report.codes() == {"lr_schedule"}
    assert f.start_step == 150
    assert f.statistic == "lr / its running minimum after the warm-up"
    assert f.value > 9
    short_constant = {"train_loss": pairs(STEPS, HEALTHY), "lr": pairs(STEPS, np.full(200, 1e-3))}
    assert analyze_history(series=short_constant).findings == ()


def test_missing_series_order_aliases_and_thresholds():
    assert analyze_history(series={}).as_dict()["findings"] == []
    assert analyze_history(series={"train_loss": [(0, 1.0), (1, None)]}).steps_seen == 2
    assert analyze_history(series={"lr": pairs(STEPS, COSINE)}).findings == ()
    vs = STEPS[::10]
    val = np.where(vs <= 80, np.exp(-vs / 80), np.exp(-1) * np.exp(0.005 * (vs - 80)))
    only_val = analyze_history(series={"val_loss": pairs(vs, val), "other": [(1, 2.0)]})
    assert only_val.findings == ()
    assert only_val.early_stopping_step == 90
    loss = np.exp(-STEPS / 100) * np.exp(0.6 * (-1.0) ** STEPS)
    forward = analyze_history(series={"train_loss": pairs(STEPS, loss)})
    backward = analyze_history(series={"loss": pairs(STEPS, loss)[::-1]})
    assert forward == backward
    strict = ConvergenceThresholds(oscillation_min_variability=2.0)
    assert (
        analyze_history(series={"train_loss": pairs(STEPS, loss)}, thresholds=strict).findings == ()
    )


def test_as_dict_is_json_ready():
    f = ConvergenceFinding("explosion", "critical", 1, 2, "s", math.nan, math.inf, "m", ("r",))
    assert f.as_dict()["value"] is None
    assert f.as_dict()["threshold"] is None
    for series, _, _ in labelled_set(n_per_kind=2, seed=5):
        data = analyze_history(series=series).as_dict()
        assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_histories_are_seeded_and_labelled():
    a, labels = make_history("explosion", seed=3)
    assert repr((a, labels)) == repr(make_history("explosion", seed=3))  # NaN != NaN
    assert labels == {"explosion"}
    assert make_history("healthy_noisy", seed=3)[1] == set()
    assert a != make_history("explosion", seed=4)[0]
    with pytest.raises(ValueError):
        make_history("nope", seed=0)


def test_precision_and_recall_per_class_on_an_unseen_seed():
    tp, fp, fn = Counter(), Counter(), Counter()
    data = labelled_set(n_per_kind=40, seed=123)
    assert Counter(kind for _, _, kind in data) == dict.fromkeys(KINDS, 40)
    for series, labels, _ in data:
        found = analyze_history(series=series).codes()
        for code in CODES:
            tp[code] += code in found and code in labels
            fp[code] += code in found and code not in labels
            fn[code] += code not in found and code in labels
    for code in CODES:
        precision = tp[code] / max(1, tp[code] + fp[code])
        recall = tp[code] / max(1, tp[code] + fn[code])
        counts = (code, tp[code], fp[code], fn[code])
        assert precision >= 0.9, counts
        assert recall >= 0.9, counts


@pytest.mark.slow
def test_real_training_with_a_100x_learning_rate_explodes_within_50_steps():
    """The coarse MAHT-Net (smallest size, the engine's loss and AdamW settings) on 8 real
    ISBI cases; from step 50 the lr is 100x the engine's 2e-3."""
    if not (DATA / "images").is_dir():
        pytest.skip(f"ISBI subset not found at {DATA}")
    import torch

    from mahtqa.engine.data import Augmenter, all_case_ids, load_samples
    from mahtqa.engine.model import build_model
    from mahtqa.engine.train import RECIPES, coarse_batch, coarse_config, heatmap_loss

    torch.set_num_threads(1)
    torch.manual_seed(0)
    started = time.monotonic()
    samples = load_samples(DATA, all_case_ids(DATA)[:8])
    model = build_model(coarse_config("mahtnet", "ce", "small"))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    aug = Augmenter(np.random.default_rng(0), **RECIPES["v1"]["coarse"])
    change, series = 50, {"train_loss": [], "grad_norm": [], "lr": []}
    for step in range(150):
        lr = 2e-3 * (100 if step >= change else 1)
        for group in opt.param_groups:
            group["lr"] = lr
        x, y = coarse_batch(samples, aug, 2)
        loss = heatmap_loss(model(x), y, "ce")
        opt.zero_grad()
        loss.backward()
        grads = [p.grad.detach().pow(2).sum() for p in model.parameters() if p.grad is not None]
        series["grad_norm"].append((step, float(torch.stack(grads).sum().sqrt())))
        series["train_loss"].append((step, loss.item()))
        series["lr"].append((step, lr))
        opt.step()
    report = analyze_history(series=series)
    starts = [f.start_step for f in report.findings if f.code == "explosion"]
    assert starts, report.as_dict()
    assert change - 5 <= min(starts) <= change + 50, report.as_dict()
    late = [f for f in report.findings if f.code == "lr_schedule"]
    assert late
    assert late[0].start_step == change
    assert time.monotonic() - started < 120
