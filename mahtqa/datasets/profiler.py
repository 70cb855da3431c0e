"""The data-loading profiler (troubleshooting guide 3.2, ``DataLoadingProfiler``): times the
engine's real training pipeline per sample, stage by stage (decode ``read_gray``, ``preprocess``
+ ``Frame.to_canonical``, the v2 ``Augmenter(robust=True)``, tensor conversion), then a real
DataLoader per (num_workers, batch_size), and turns the figures into recommendations."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mahtqa.cephalometry.landmarks import N_LANDMARKS
from mahtqa.engine.data import Augmenter, read_gray
from mahtqa.engine.preprocess import preprocess

# Thresholds. The first two are the guide's (3.2, suggest_optimizations): "> 100ms
# per batch" and preprocessing "> 0.05" s. The last two are this module's own.
BATCH_SLOW_MS = 100.0
PREPROCESS_SLOW_MS = 50.0
DECODE_DOMINANT_SHARE = 0.5  # decode's share of the per-image time
WORKER_SPEEDUP = 1.3  # workers must beat num_workers=0 by this factor to "help"
LOADER_TIMEOUT_S = 300.0  # a worker batch slower than this is an error, not a hang

STAGES = ("decode", "preprocess", "augment", "to_tensor")


@dataclass(frozen=True)
class ProfileItem:
    path: Path
    points: np.ndarray | None = None  # (7, 2) in the image's pixels; None -> zeros


@dataclass(frozen=True)
class StageTimes:
    decode_ms: float  # per image, milliseconds: medians, then 95th percentiles
    preprocess_ms: float
    augment_ms: float
    to_tensor_ms: float
    decode_p95_ms: float
    preprocess_p95_ms: float
    augment_p95_ms: float

    def medians(self) -> dict[str, float]:
        return {s: getattr(self, f"{s}_ms") for s in STAGES}


@dataclass(frozen=True)
class LoaderTiming:
    num_workers: int
    batch_size: int
    batch_ms_median: float  # wait in next(iter) per batch, the first batch excluded
    batch_ms_p95: float
    first_batch_ms: float  # iter() + the first next(): includes worker start-up
    images_per_s: float  # all batches / total wall time (start-up included)


@dataclass(frozen=True)
class Recommendation:
    code: str
    message: str
    evidence: str


@dataclass(frozen=True)
class ProfileReport:
    images: int
    stages: StageTimes
    loaders: tuple[LoaderTiming, ...]
    bottleneck: str
    best: LoaderTiming
    recommendations: tuple[Recommendation, ...]

    def as_dict(self) -> dict:
        out = asdict(self)
        return out | {k: list(out[k]) for k in ("loaders", "recommendations")}


def _points(points: np.ndarray | None) -> np.ndarray:
    pts = np.zeros((N_LANDMARKS, 2)) if points is None else np.asarray(points, dtype=np.float64)
    if pts.shape != (N_LANDMARKS, 2):
        raise ValueError(f"points must have shape ({N_LANDMARKS}, 2), got {pts.shape}")
    return pts


def _preprocess(gray: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    canonical, frame = preprocess(gray)
    return canonical, frame.to_canonical(points)


def _to_tensor(image: np.ndarray, points: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    tensor = torch.from_numpy(np.ascontiguousarray(image)[None])  # (1, 800, 640)
    return tensor, torch.from_numpy(points.astype(np.float32))


def _pipeline(augmenter: Augmenter) -> tuple[tuple[str, Callable], ...]:
    """One sample, stage by stage: each step maps (data, points) to (data, points)."""
    return (
        ("decode", lambda path, points: (read_gray(Path(path)), points)),
        ("preprocess", _preprocess),
        ("augment", augmenter),
        ("to_tensor", _to_tensor),
    )


class ProfileDataset(Dataset):
    """``length`` samples cycling over the items; picklable for worker processes. Each
    index has its own generator (seed, index): workers do not repeat each other's draws."""

    def __init__(self, items: Sequence[ProfileItem], length: int, seed: int = 0):
        self.paths = [str(item.path) for item in items]
        self.points = [_points(item.points) for item in items]
        self.length = length
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        k = index % len(self.paths)
        data, points = self.paths[k], self.points[k]
        augmenter = Augmenter(np.random.default_rng((self.seed, index)), robust=True)
        for _, step in _pipeline(augmenter):
            data, points = step(data, points)
        return data, points


def _worker_init(worker_id: int) -> None:
    # One torch thread per worker (no oversubscription). Not cv2.setNumThreads: in a
    # forked child it can deadlock on the parent's thread-pool state.
    torch.set_num_threads(1)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def measure_stages(items: Sequence[ProfileItem], *, samples: int, seed: int = 0) -> StageTimes:
    """Time each stage separately, in-process, on the first ``samples`` items."""
    augmenter = Augmenter(np.random.default_rng(seed), robust=True)
    times: dict[str, list[float]] = {s: [] for s in STAGES}
    for item in list(items)[: max(1, samples)]:
        data, points = str(item.path), _points(item.points)
        for name, step in _pipeline(augmenter):
            t = time.perf_counter()
            data, points = step(data, points)
            times[name].append(_ms(t))
    med, p95 = ({s: float(np.percentile(v, q)) for s, v in times.items()} for q in (50, 95))
    return StageTimes(
        **{f"{s}_ms": med[s] for s in STAGES}, **{f"{s}_p95_ms": p95[s] for s in STAGES[:3]}
    )


def time_loader(
    items: Sequence[ProfileItem], *, num_workers: int, batch_size: int, batches: int, seed: int = 0
) -> LoaderTiming:
    """Run ``batches + 1`` batches of a real DataLoader; the first one is start-up."""
    dataset = ProfileDataset(items, (batches + 1) * batch_size, seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        persistent_workers=False,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        timeout=LOADER_TIMEOUT_S if num_workers > 0 else 0,
    )
    waits = []
    t = time.perf_counter()
    iterator = iter(loader)
    try:
        for _ in range(batches + 1):
            next(iterator)
            waits.append(_ms(t))
            t = time.perf_counter()
    finally:  # now: a worker error's traceback keeps it alive, and later forks hang on it
        getattr(iterator, "_shutdown_workers", lambda: None)()
    first, waits = waits[0], waits[1:]
    median, p95 = (float(v) for v in np.percentile(waits, [50, 95]))
    # Over the whole run, start-up included: the waits after the first batch alone
    # over-state it, as the workers fill their prefetch queue while it is awaited.
    rate = batch_size * (batches + 1) / max((first + sum(waits)) / 1000.0, 1e-9)
    return LoaderTiming(num_workers, batch_size, median, p95, first, rate)


def bottleneck_of(stages: StageTimes) -> str:
    medians = stages.medians()
    return max(STAGES, key=lambda s: medians[s])


def recommend(
    stages: StageTimes, loaders: Sequence[LoaderTiming], *, cpu_count: int | None = None
) -> tuple[Recommendation, ...]:
    """The recommendations for these figures (pure: no timing, no I/O)."""
    if not loaders:
        raise ValueError("no loader timings")
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    out: list[Recommendation] = []

    def add(code: str, message: str, evidence: str) -> None:
        out.append(Recommendation(code, message, evidence))

    best = max(loaders, key=lambda t: t.images_per_s)
    config = f"num_workers={best.num_workers}, batch_size={best.batch_size}"
    if best.batch_ms_median > BATCH_SLOW_MS:
        add(
            "loader_slow_batches",
            f"Batches are slow even at the best configuration ({config}): increase "
            "num_workers in the DataLoader and use faster storage (SSD) for I/O.",
            f"median batch {best.batch_ms_median:.1f} ms > {BATCH_SLOW_MS:g} ms (guide 3.2)",
        )
    if stages.preprocess_ms > PREPROCESS_SLOW_MS:
        add(
            "preprocess_slow",
            "Optimise the image preprocessing pipeline, or cache the canonical "
            "(preprocessed 800 x 640) images instead of recomputing them per epoch.",
            f"preprocess median {stages.preprocess_ms:.1f} ms/image > "
            f"{PREPROCESS_SLOW_MS:g} ms (guide 3.2)",
        )
    medians = stages.medians()
    total = sum(medians.values())
    neck = bottleneck_of(stages)
    share = medians[neck] / total if total > 0 else 0.0
    if neck == "decode" and share > DECODE_DOMINANT_SHARE:
        add(
            "decode_dominates",
            "Decoding dominates: store decoded or downscaled copies (e.g. pre-resized "
            "PNG at the canonical size, or uncompressed .npy) and load those.",
            f"decode {stages.decode_ms:.1f} ms = {share:.0%} of {total:.1f} ms/image "
            f"> {DECODE_DOMINANT_SHARE:.0%}",
        )
    if neck == "augment":
        add(
            "augment_dominates",
            "Augmentation is the slowest stage: make it cheaper (fewer or smaller "
            "blurs and warps per sample) or run it on the GPU on whole batches.",
            f"augment {stages.augment_ms:.1f} ms = {share:.0%} of {total:.1f} ms/image, "
            "the largest stage",
        )
    serial = [t for t in loaders if t.num_workers == 0]
    parallel = [t for t in loaders if t.num_workers > 0]
    if serial and parallel:
        base = max(serial, key=lambda t: t.images_per_s)
        top = max(parallel, key=lambda t: t.images_per_s)
        ratio = top.images_per_s / max(base.images_per_s, 1e-9)
        evidence = (
            f"best num_workers={top.num_workers}: {top.images_per_s:.1f} images/s vs "
            f"num_workers=0: {base.images_per_s:.1f} images/s = {ratio:.2f}x "
            f"(threshold {WORKER_SPEEDUP}x); {cores} CPU cores"
        )
        if ratio < WORKER_SPEEDUP:
            add(
                "workers_do_not_help",
                f"Extra workers do not help: the CPU is the limit ({cores} cores). Make "
                "the per-image work cheaper or use a machine with more cores.",
                evidence,
            )
        else:
            add("more_workers_help", f"Throughput rises with workers: use {config}.", evidence)
    return tuple(out)


def profile_loading(
    *,
    items: Sequence[ProfileItem],
    batch_sizes: Sequence[int] = (1, 4, 8),
    num_workers: Sequence[int] = (0, 1, 2),
    batches: int = 5,
    stage_samples: int = 20,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> ProfileReport:
    """Profile the stages, then every (num_workers, batch_size) configuration."""
    items = list(items)
    if not items:
        raise ValueError("no images to profile")
    if min(batch_sizes, default=0) < 1 or min(num_workers, default=-1) < 0:
        raise ValueError("batch_sizes must be >= 1 and num_workers >= 0 (both non-empty)")
    if batches < 1 or stage_samples < 1:
        raise ValueError("batches and stage_samples must be at least 1")
    total = 1 + len(batch_sizes) * len(num_workers)
    report = progress or (lambda done, total: None)
    stages = measure_stages(items, samples=stage_samples, seed=seed)
    report(1, total)
    loaders = []
    for workers in num_workers:
        for size in batch_sizes:
            loaders.append(
                time_loader(items, num_workers=workers, batch_size=size, batches=batches, seed=seed)
            )
            report(1 + len(loaders), total)
    best = max(loaders, key=lambda t: t.images_per_s)
    recs = recommend(stages, loaders)
    return ProfileReport(len(items), stages, tuple(loaders), bottleneck_of(stages), best, recs)
