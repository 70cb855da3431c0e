"""Dataset-wide checks of a validation run, from light per-image rows streamed out of
the database: duplicates and leakage across splits, annotator consistency by
landmark, balance (splits, sizes, spacing, landmark positions), the integrity score
and the distributions the report plots. Memory is a few numbers per image."""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mahtqa.cephalometry.landmarks import ABBREVIATIONS, N_LANDMARKS
from mahtqa.datasets.checks import Finding
from mahtqa.datasets.layouts import SPLITS, Spacing

NEAR_DUPLICATE_BITS = 10  # of 256 dHash bits: at or below, two images are copies of one
HIST_EDGES_MM = tuple(np.round(np.arange(0, 10.5, 0.5), 2))  # annotator distance histogram
SMALL_SPLIT_SHARE = 0.05
POSITION_SHIFT_SD = 0.5  # a split's mean landmark position this many pooled SDs away


@dataclass(frozen=True)
class ImageRow:
    key: str
    split: str
    readable: bool
    sha256: str = ""
    dhash: str = ""
    width: int | None = None
    height: int | None = None
    spacing: Spacing | None = None
    quality_score: float | None = None
    distances: dict[str, list[float | None]] = field(default_factory=dict)
    unit: str = "mm"
    positions: list[list[float]] | None = None  # (7, 2) mean of annotators / (w, h)


def _stats(values: list[float], threshold: float) -> dict[str, float]:
    arr = np.asarray(values, float)
    if not arr.size:
        return {"n": 0}
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()), 3),
        "median": round(float(np.median(arr)), 3),
        "p90": round(float(np.percentile(arr, 90)), 3),
        "over_threshold_pct": round(100.0 * float((arr > threshold).mean()), 1),
        "histogram": np.histogram(np.clip(arr, 0, HIST_EDGES_MM[-1]), bins=HIST_EDGES_MM)[
            0
        ].tolist(),
    }


NEAR_DUPLICATES_LISTED = 10
BLOCK = 512


def _bits(hashes: list[tuple[str, str]]) -> np.ndarray:
    return np.frombuffer(b"".join(bytes.fromhex(h) for _, h in hashes), np.uint64).reshape(
        len(hashes), -1
    )


def _near_duplicates(
    hashes: dict[str, list[tuple[str, str]]], bits: int
) -> Iterator[tuple[str, str, str, str, int]]:
    """Pairs of images in different splits whose dHashes differ in <= ``bits`` bits,
    streamed block by block (BLOCK x BLOCK hashes, 8 MB, whatever the dataset's size)."""
    splits = sorted(hashes)
    for i, sa in enumerate(splits):
        a = _bits(hashes[sa])
        for sb in splits[i + 1 :]:
            b = _bits(hashes[sb])
            for start in range(0, len(a), BLOCK):
                for bstart in range(0, len(b), BLOCK):  # blocks of both: bounded memory
                    block = a[start : start + BLOCK, None, :] ^ b[None, bstart : bstart + BLOCK, :]
                    d = np.bitwise_count(block).sum(axis=-1)
                    for ia, ib in zip(*np.nonzero(d <= bits), strict=True):
                        yield (hashes[sa][start + ia][0], sa, hashes[sb][bstart + ib][0], sb,
                               int(d[ia, ib]))  # fmt: skip


class _Accumulator:
    def __init__(self, threshold: float):
        self.threshold = threshold
        self.n = self.readable = 0
        self.splits: Counter[str] = Counter()
        self.sizes: Counter[str] = Counter()
        self.spacings: Counter[str] = Counter()
        self.by_sha: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.hashes: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.dist: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in ABBREVIATIONS])
        self.units: set[str] = set()
        self.quality: list[float] = []
        self.pos_sum: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((N_LANDMARKS, 2)))
        self.pos_sq: dict[str, np.ndarray] = defaultdict(lambda: np.zeros((N_LANDMARKS, 2)))
        self.pos_n: Counter[str] = Counter()

    def add(self, row: ImageRow) -> None:
        self.n += 1
        self.splits[row.split] += 1
        self.spacings[
            "unknown" if row.spacing is None else f"{row.spacing[0]:g} x {row.spacing[1]:g}"
        ] += 1
        if not row.readable:
            return
        self.readable += 1
        self.sizes[f"{row.width}x{row.height}"] += 1
        self.by_sha[row.sha256].append((row.key, row.split))
        if row.dhash:
            self.hashes[row.split].append((row.key, row.dhash))
        if row.quality_score is not None:
            self.quality.append(row.quality_score)
        for pair, values in row.distances.items():
            self.units.add(row.unit)
            for i, v in enumerate(values):
                if v is not None:
                    self.dist[pair][i].append(v)
        if row.positions is not None:
            p = np.asarray(row.positions, float)
            self.pos_sum[row.split] += p
            self.pos_sq[row.split] += p * p
            self.pos_n[row.split] += 1


def _consistency(acc: _Accumulator) -> tuple[dict[str, Any], list[Finding]]:
    out: dict[str, Any] = {
        "threshold_mm": acc.threshold,
        "unit": "px" if "px" in acc.units else "mm",
        "pairs": {},
    }
    findings = []
    for pair, per_landmark in sorted(acc.dist.items()):
        stats = {
            name: _stats(v, acc.threshold)
            for name, v in zip(ABBREVIATIONS, per_landmark, strict=True)
        }
        every = [x for v in per_landmark for x in v]
        ranked = sorted((s["mean"], n) for n, s in stats.items() if s["n"])
        least = [n for _, n in ranked[::-1][:2]]
        out["pairs"][pair] = {
            "landmarks": stats,
            "overall": _stats(every, acc.threshold),
            "least_consistent": least,
        }
        if least:
            a, b = pair.split("|")
            findings.append(
                Finding(
                    "annotator_least_consistent",
                    "info",
                    f"{a} vs {b}: the least consistent landmarks are "
                    + ", ".join(f"{n} ({stats[n]['mean']:.2f} {out['unit']})" for n in least)
                    + ".",
                    landmark=",".join(least),
                    details={"pair": pair},
                )
            )
    return out, findings


def _leakage(acc: _Accumulator, bits: int) -> tuple[dict[str, int], list[Finding]]:
    findings = []
    exact = 0
    for sha, members in acc.by_sha.items():
        if len(members) < 2:
            continue
        splits = {s for _, s in members}
        names = ", ".join(k for k, _ in members)
        if len(splits) > 1:
            exact += 1
            code, sev, what = (
                "split_leakage_duplicate",
                "error",
                f"in splits {', '.join(sorted(splits))}",
            )
        else:
            code, sev, what = "duplicate_image", "warning", f"in the {next(iter(splits))} split"
        for key, _ in members[1:]:
            findings.append(
                Finding(
                    code,
                    sev,
                    f"Identical images {what}: {names}.",
                    image=key,
                    details={"sha256": sha[:16], "members": [k for k, _ in members]},
                )
            )
    same_content = {k for m in acc.by_sha.values() if len(m) > 1 for k, _ in m}
    # One finding per image (its closest NEAR_DUPLICATES_LISTED look-alikes and the count),
    # not one per pair: a case copied 100 times would otherwise give 10,000 findings, and
    # the memory held would grow with the square of the copies.
    near: dict[tuple[str, str], tuple[int, list[tuple[int, str, str]]]] = {}
    pairs = 0
    for ka, sa, kb, sb, d in _near_duplicates(acc.hashes, bits):
        if {ka, kb} <= same_content:
            continue
        pairs += 1
        if sb == "train":  # flag the held-out image: its score is the one contaminated
            ka, sa, kb, sb = kb, sb, ka, sa
        count, closest = near.get((kb, sb), (0, []))
        heapq.heappush(closest, (-d, ka, sa))
        if len(closest) > NEAR_DUPLICATES_LISTED:
            heapq.heappop(closest)
        near[(kb, sb)] = (count + 1, closest)
    for (kb, sb), (count, closest) in near.items():
        ranked = sorted((-nd, ka, sa) for nd, ka, sa in closest)
        d, ka, sa = ranked[0]
        more = f" and {count - 1} more" if count > 1 else ""
        findings.append(
            Finding(
                "split_leakage_near_duplicate",
                "error",
                f"{kb} ({sb}) looks like {ka} ({sa}){more}: dHash distance {d} <= {bits} bits.",
                image=kb,
                details={
                    "other": ka,
                    "bits": d,
                    "count": count,
                    "closest": [{"image": k, "split": s_, "bits": b} for b, k, s_ in ranked],
                },
            )  # fmt: skip
        )
    return {
        "exact_across_splits": exact, "near_duplicates_across_splits": pairs,
        "images_with_near_duplicates": len(near),
    }, findings  # fmt: skip


def _balance(acc: _Accumulator) -> tuple[dict[str, Any], list[Finding]]:
    findings = []
    for split in SPLITS:
        n = acc.splits.get(split, 0)
        if n == 0:
            findings.append(Finding("split_empty", "warning", f"The {split} split has no images."))
        elif n < SMALL_SPLIT_SHARE * acc.n:
            findings.append(
                Finding("split_small", "info", f"The {split} split has {n} of {acc.n} images.")
            )
    if acc.spacings.get("unknown"):
        findings.append(
            Finding(
                "spacing_unknown",
                "warning",
                f"{acc.spacings['unknown']} images have no pixel spacing: distances are in pixels.",
            )
        )
    if len([k for k in acc.spacings if k != "unknown"]) > 1:
        findings.append(
            Finding(
                "spacing_inconsistent",
                "warning",
                f"{len(acc.spacings)} pixel spacings: {dict(acc.spacings.most_common(5))}.",
            )
        )
    if len(acc.sizes) > 1:
        findings.append(
            Finding(
                "size_inconsistent",
                "info",
                f"{len(acc.sizes)} image sizes: {dict(acc.sizes.most_common(5))}.",
            )
        )
    positions: dict[str, Any] = {}
    total_n = sum(acc.pos_n.values())
    if total_n > 1:
        mean_all = sum(acc.pos_sum.values()) / total_n
        sd_all = np.sqrt(np.maximum(sum(acc.pos_sq.values()) / total_n - mean_all**2, 1e-12))
        for split, n in acc.pos_n.items():
            mean = acc.pos_sum[split] / n
            positions[split] = {
                name: [round(float(v), 4) for v in mean[i]] for i, name in enumerate(ABBREVIATIONS)
            }
            shift = np.abs(mean - mean_all) / sd_all
            worst = int(np.argmax(shift.max(axis=1)))
            if n >= 5 and shift[worst].max() > POSITION_SHIFT_SD:
                findings.append(
                    Finding(
                        "split_position_shift",
                        "warning",
                        f"In the {split} split, {ABBREVIATIONS[worst]} sits "
                        f"{shift[worst].max():.2f} "
                        f"SD from the dataset's mean position.",
                        landmark=ABBREVIATIONS[worst],
                    )
                )
    return {
        "splits": dict(acc.splits),
        "sizes": dict(acc.sizes),
        "spacings": dict(acc.spacings),
        "positions": positions,
    }, findings


def summarize(
    *,
    rows: Iterable[ImageRow],
    consistency_mm: float,
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS,
) -> tuple[dict[str, Any], list[Finding]]:
    """The summary (JSON-ready) and the dataset-wide findings."""
    acc = _Accumulator(consistency_mm)
    for row in rows:
        acc.add(row)
    consistency, f1 = _consistency(acc)
    leakage, f2 = _leakage(acc, near_duplicate_bits)
    balance, f3 = _balance(acc)
    q = np.asarray(acc.quality, float)
    quality = {
        "mean": round(float(q.mean()), 2) if q.size else None,
        "histogram": np.histogram(q, bins=np.arange(0, 11))[0].tolist() if q.size else [],
    }
    summary = {
        "images": acc.n,
        "readable": acc.readable,
        "integrity_score": round(acc.readable / acc.n, 4) if acc.n else 0.0,
        "quality": quality,
        "consistency": consistency,
        "leakage": leakage,
        **balance,
    }
    return summary, f1 + f2 + f3
