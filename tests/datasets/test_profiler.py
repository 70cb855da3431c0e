"""The data-loading profiler: real DataLoader runs on a few ISBI radiographs and tiny
synthetic PNGs, and the recommendation rules on hand-made figures (deterministic)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from mahtqa.cephalometry.isbi import load_isbi_cases
from mahtqa.datasets.profiler import (
    BATCH_SLOW_MS,
    PREPROCESS_SLOW_MS,
    STAGES,
    LoaderTiming,
    ProfileDataset,
    ProfileItem,
    StageTimes,
    bottleneck_of,
    profile_loading,
    recommend,
)

ISBI = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "isbi2015-subset"
FAST = {"batch_sizes": (1, 2), "batches": 2, "stage_samples": 4}


@pytest.fixture(scope="module")
def isbi_items() -> list[ProfileItem]:
    if not (ISBI / "images").is_dir():
        pytest.skip(f"ISBI subset not found at {ISBI}")
    cases = load_isbi_cases(ISBI, ["001", "002", "003", "004", "005"])
    return [ProfileItem(path=c.image_path, points=c.mean) for c in cases]


def _png(path: Path, seed: int, shape: tuple[int, int] = (96, 80)) -> Path:
    image = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def synthetic_items(tmp_path: Path) -> list[ProfileItem]:
    return [ProfileItem(path=_png(tmp_path / f"s{i}.png", i), points=None) for i in range(3)]


@pytest.fixture(scope="module")
def isbi_report(isbi_items):
    calls: list[tuple[int, int]] = []
    report = profile_loading(
        items=isbi_items, num_workers=(0, 1), progress=lambda d, t: calls.append((d, t)), **FAST
    )
    return report, calls


def stages(decode=2.0, preprocess=3.0, augment=2.5, to_tensor=0.01) -> StageTimes:
    return StageTimes(decode, preprocess, augment, to_tensor, decode, preprocess, augment)


def timing(workers: int, batch: int, median_ms: float, per_s: float) -> LoaderTiming:
    return LoaderTiming(workers, batch, median_ms, median_ms * 1.2, median_ms * 3, per_s)


def codes(recs) -> list[str]:
    return [r.code for r in recs]


# --- real runs ----------------------------------------------------------------------


def test_report_has_one_positive_timing_per_config(isbi_report):
    report, _ = isbi_report
    assert report.images == 5
    assert [(t.num_workers, t.batch_size) for t in report.loaders] == [
        (0, 1),
        (0, 2),
        (1, 1),
        (1, 2),
    ]
    for t in report.loaders:
        assert t.batch_ms_median > 0
        assert t.batch_ms_p95 >= t.batch_ms_median
        assert t.first_batch_ms > 0
        assert t.images_per_s > 0
    assert report.best == max(report.loaders, key=lambda t: t.images_per_s)
    s = report.stages
    assert min(s.decode_ms, s.preprocess_ms, s.augment_ms, s.to_tensor_ms) > 0
    assert s.augment_p95_ms >= s.augment_ms


def test_bottleneck_is_the_largest_median_stage(isbi_report):
    report, _ = isbi_report
    medians = report.stages.medians()
    assert report.bottleneck == max(medians, key=medians.get)
    assert report.recommendations == recommend(report.stages, report.loaders)


@pytest.mark.parametrize("stage", STAGES)
def test_bottleneck_of_hand_made_figures(stage):
    figures = {"decode": 1.0, "preprocess": 2.0, "augment": 3.0, "to_tensor": 0.5} | {stage: 9.0}
    assert bottleneck_of(stages(**figures)) == stage


def test_progress_is_called_after_the_stages_and_each_config(isbi_report):
    _, calls = isbi_report
    assert calls == [(i, 5) for i in range(1, 6)]


def test_as_dict_is_json_ready(isbi_report):
    report, _ = isbi_report
    data = json.loads(json.dumps(report.as_dict(), allow_nan=False))
    assert data["images"] == 5
    assert data["bottleneck"] == report.bottleneck
    assert len(data["loaders"]) == 4
    assert set(data["stages"]) >= {f"{s}_ms" for s in STAGES}
    assert data["best"]["images_per_s"] == report.best.images_per_s
    assert all(set(r) == {"code", "message", "evidence"} for r in data["recommendations"])


def test_a_worker_process_yields_the_real_pipeline_output(synthetic_items):
    loader = DataLoader(ProfileDataset(synthetic_items, 4, seed=1), batch_size=2, num_workers=1)
    batches = list(loader)
    assert len(batches) == 2
    images, points = batches[0]
    assert images.shape == (2, 1, 800, 640)
    assert images.dtype == torch.float32
    assert points.shape == (2, 7, 2)
    assert float(images.min()) >= 0.0
    assert float(images.max()) <= 1.0


def test_workers_and_cycling_over_few_items(synthetic_items):
    report = profile_loading(
        items=synthetic_items, batch_sizes=(4,), num_workers=(1,), batches=2, stage_samples=2
    )
    (only,) = report.loaders
    assert (only.num_workers, only.batch_size) == (1, 4)
    assert only.images_per_s > 0
    assert report.best == only
    assert report.images == 3


def test_augmentation_differs_per_index_but_is_seeded(synthetic_items):
    a, b = ProfileDataset(synthetic_items, 6, seed=3), ProfileDataset(synthetic_items, 6, seed=3)
    assert torch.equal(a[0][0], b[0][0])
    assert not torch.equal(a[0][0], a[3][0])  # same image, another index


def test_unreadable_image_raises_naming_it(tmp_path, synthetic_items):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        profile_loading(items=[ProfileItem(path=broken, points=None)], **FAST)


def test_unreadable_image_in_a_worker_raises_naming_it(tmp_path, synthetic_items):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG garbage")
    items = [synthetic_items[0], ProfileItem(path=broken, points=None)]
    with pytest.raises(ValueError, match="broken.png") as excinfo:
        profile_loading(items=items, batch_sizes=(2,), num_workers=(1,), batches=1, stage_samples=1)
    # The traceback still references the failed loader's iterator; its worker must be gone
    # anyway, or the next loader's forked workers inherit its queues and can hang.
    assert excinfo.value is not None
    assert multiprocessing.active_children() == []
    report = profile_loading(
        items=synthetic_items[:1], batch_sizes=(2,), num_workers=(1,), batches=1, stage_samples=1
    )
    assert report.loaders[0].images_per_s > 0


def test_bad_arguments(synthetic_items):
    with pytest.raises(ValueError, match="no images to profile"):
        profile_loading(items=[])
    with pytest.raises(ValueError, match="batch_sizes"):
        profile_loading(items=synthetic_items, batch_sizes=(0,))
    with pytest.raises(ValueError, match="shape"):
        profile_loading(items=[ProfileItem(path=synthetic_items[0].path, points=np.zeros((5, 2)))])


# --- the recommendation rules, on hand-made figures ---------------------------------


def test_fast_pipeline_gets_no_recommendation():
    assert recommend(stages(), [timing(0, 4, 20.0, 200.0)], cpu_count=2) == ()


def test_fast_pipeline_with_scaling_workers_gets_only_the_best_config():
    loaders = [timing(0, 4, 20.0, 100.0), timing(2, 4, 10.0, 250.0)]
    (rec,) = recommend(stages(), loaders, cpu_count=4)
    assert rec.code == "more_workers_help"
    assert "num_workers=2, batch_size=4" in rec.message
    assert "2.50x" in rec.evidence
    assert "1.3x" in rec.evidence


def test_slow_batches():
    loaders = [timing(0, 8, 150.0, 50.0), timing(0, 1, 90.0, 11.0)]
    recs = recommend(stages(), loaders, cpu_count=2)
    assert codes(recs) == ["loader_slow_batches"]
    assert "num_workers=0, batch_size=8" in recs[0].message
    assert "num_workers" in recs[0].message
    assert "storage" in recs[0].message
    assert "150.0 ms" in recs[0].evidence
    assert f"{BATCH_SLOW_MS:g} ms" in recs[0].evidence


def test_batches_at_the_threshold_are_not_slow():
    assert recommend(stages(), [timing(0, 8, BATCH_SLOW_MS, 80.0)], cpu_count=2) == ()


def test_slow_preprocessing():
    recs = recommend(stages(preprocess=60.0), [timing(0, 4, 20.0, 200.0)], cpu_count=2)
    assert codes(recs) == ["preprocess_slow"]
    assert "cach" in recs[0].message
    assert "60.0 ms" in recs[0].evidence
    assert f"{PREPROCESS_SLOW_MS:g} ms" in recs[0].evidence


def test_decode_dominates_only_above_half_the_time():
    fast = [timing(0, 4, 20.0, 200.0)]
    recs = recommend(stages(decode=30.0, preprocess=5.0, augment=4.0), fast, cpu_count=2)
    assert codes(recs) == ["decode_dominates"]
    assert ".npy" in recs[0].message
    assert "77%" in recs[0].evidence
    # the largest stage, but 10 of 27 ms: not dominant
    assert recommend(stages(decode=10.0, preprocess=9.0, augment=8.0), fast, cpu_count=2) == ()


def test_augment_dominates():
    recs = recommend(stages(augment=20.0), [timing(0, 4, 20.0, 200.0)], cpu_count=2)
    assert codes(recs) == ["augment_dominates"]
    assert "20.0 ms" in recs[0].evidence


def test_workers_that_do_not_help_name_the_cores():
    loaders = [timing(0, 4, 40.0, 30.0), timing(1, 4, 38.0, 31.0), timing(2, 4, 36.0, 33.0)]
    recs = recommend(stages(), loaders, cpu_count=2)
    assert codes(recs) == ["workers_do_not_help"]
    assert "2 cores" in recs[0].message
    assert "1.10x" in recs[0].evidence
    assert "2 CPU cores" in recs[0].evidence


def test_all_rules_at_once_and_no_loaders():
    slow = stages(decode=1.0, preprocess=80.0, augment=2.0)
    loaders = [timing(0, 8, 400.0, 20.0), timing(2, 8, 200.0, 40.0)]
    assert codes(recommend(slow, loaders, cpu_count=2)) == [
        "loader_slow_batches",
        "preprocess_slow",
        "more_workers_help",
    ]
    with pytest.raises(ValueError, match="no loader timings"):
        recommend(slow, [])
