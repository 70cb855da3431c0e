"""Training targets (issue 10): the annotators' mean, or one annotator at random per
draw, so the heatmap can learn where the two disagree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mahtqa.cephalometry.isbi import load_isbi_cases
from mahtqa.engine.data import Augmenter, Sample, load_samples
from mahtqa.engine.train import coarse_batch, fine_batch

DATA = Path(__file__).resolve().parents[3] / "shared/data/isbi2015-subset"


def _sample() -> Sample:
    senior = np.arange(14, dtype=float).reshape(7, 2) * 10
    junior = senior + 6.0
    return Sample("001", np.zeros((800, 640), np.float32), (senior + junior) / 2, senior,
                  np.stack([senior, junior]))  # fmt: skip


def test_the_mean_or_one_annotator_at_random():
    s = _sample()
    rng = np.random.default_rng(0)
    assert s.target(rng) is s.points
    draws = [s.target(rng, "annotators") for _ in range(200)]
    seniors = sum(np.array_equal(d, s.annotators[0]) for d in draws)
    juniors = sum(np.array_equal(d, s.annotators[1]) for d in draws)
    assert seniors + juniors == 200  # never the mean, always one of the two
    assert 70 <= seniors <= 130
    with pytest.raises(ValueError, match="unknown training targets"):
        s.target(rng, "median")
    bare = Sample("002", s.canonical, s.points, s.original_points)
    with pytest.raises(ValueError, match="no annotators"):
        bare.target(rng, "annotators")


def test_batches_follow_the_targets_asked_for():
    s = _sample()
    aug = Augmenter(np.random.default_rng(1), rotate_deg=0.0, scale=(1.0, 1.0), shift_px=0.0)
    _, mean_heat = coarse_batch([s], aug, 1)
    _, ann_heat = coarse_batch([s], aug, 1, "annotators")
    assert mean_heat.shape == ann_heat.shape
    assert not np.allclose(mean_heat.numpy(), ann_heat.numpy())  # 6 px away: other peaks
    x, y = fine_batch([s], aug, 1, "annotators")
    assert x.shape[0] == y.shape[0] == 7


def test_real_samples_carry_both_annotators_in_canonical_pixels():
    if not (DATA / "images").is_dir():
        pytest.skip(f"ISBI subset not found at {DATA}")
    (sample,) = load_samples(DATA, ["001"])
    (case,) = load_isbi_cases(DATA, ["001"])
    assert sample.annotators.shape == (2, 7, 2)
    assert sample.annotators.mean(axis=0) == pytest.approx(sample.points)
    assert not np.allclose(sample.annotators[0], sample.annotators[1])
    assert sample.original_points == pytest.approx(case.mean)


def test_a_stage_trained_on_other_targets_is_not_reused(tmp_path):
    import torch

    from mahtqa.engine.crossval import _finished
    from mahtqa.engine.train import train_stage

    with pytest.raises(ValueError, match="targets must be one of"):
        train_stage(stage="coarse", arch="mahtnet", samples=[_sample()], val=[], steps=1,
                    seed=0, out=tmp_path, size="small", targets="median")  # fmt: skip
    path = train_stage(stage="coarse", arch="mahtnet", samples=[_sample()], val=[], steps=1,
                       seed=0, out=tmp_path, loss="ce", size="small", recipe="v2",
                       targets="annotators")  # fmt: skip
    assert torch.load(path, weights_only=True)["config"]["extra"]["targets"] == "annotators"
    assert _finished(path, 1, "annotators")
    assert not _finished(path, 1, "mean")  # a mean run in the same folder retrains
    assert not _finished(path, 2, "annotators")
    assert not _finished(tmp_path / "absent.pt", 1, "annotators")
