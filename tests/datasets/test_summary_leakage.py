"""Near-duplicates across splits: one finding per image (count and closest look-alikes),
not one per pair, so a case copied many times stays readable and memory stays bounded."""

from __future__ import annotations

import numpy as np

from mahtqa.datasets.summary import NEAR_DUPLICATES_LISTED, ImageRow, summarize


def _hash(bits: np.ndarray) -> str:
    return np.packbits(bits).tobytes().hex()


def test_copies_across_splits_give_one_finding_per_image_with_the_count():
    rng = np.random.default_rng(4)
    base = rng.integers(0, 2, 256).astype(bool)
    other = ~base  # 256 bits away from base: never a near-duplicate
    rows = []
    for i in range(15):  # 15 near-copies of one case in train (i bits flipped)
        copy = base.copy()
        copy[: i % 3] ^= True
        rows.append(ImageRow(key=f"t{i}", split="train", readable=True, sha256=f"a{i}",
                             dhash=_hash(copy)))  # fmt: skip
    rows.append(ImageRow(key="v0", split="test", readable=True, sha256="b0", dhash=_hash(base)))
    rows.append(ImageRow(key="v1", split="test", readable=True, sha256="b1", dhash=_hash(other)))
    summary, findings = summarize(rows=rows, consistency_mm=2.0)
    near = [f for f in findings if f.code == "split_leakage_near_duplicate"]
    assert summary["leakage"]["near_duplicates_across_splits"] == 15  # pairs
    assert summary["leakage"]["images_with_near_duplicates"] == 1
    assert len(near) == 1
    (f,) = near
    assert f.image == "v0"
    assert f.details["count"] == 15
    assert len(f.details["closest"]) == NEAR_DUPLICATES_LISTED
    assert [c["bits"] for c in f.details["closest"]] == sorted(
        c["bits"] for c in f.details["closest"]
    )
    assert f.details["bits"] == 0
    assert "and 14 more" in f.message
