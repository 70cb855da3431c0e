"""Training data: the fixed split, in-memory samples and augmentation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mahtqa.cephalometry.isbi import available_case_ids, load_isbi_cases
from mahtqa.engine.preprocess import preprocess

SPLIT_SEED = 2015
N_TEST = 20
N_CALIBRATION = 15


def make_split(case_ids: list[str], *, seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """Fixed split of the case ids into train / calibration / test (held-out)."""
    ids = sorted(case_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]
    n_test = min(N_TEST, len(ids) // 5)
    n_cal = min(N_CALIBRATION, len(ids) // 6)
    return {
        "test": sorted(shuffled[:n_test]),
        "calibration": sorted(shuffled[n_test : n_test + n_cal]),
        "train": sorted(shuffled[n_test + n_cal :]),
    }


@dataclass
class Sample:
    case_id: str
    canonical: np.ndarray  # (800, 640) float32 in [0, 1]
    points: np.ndarray  # (7, 2) canonical coordinates, mean of annotators
    original_points: np.ndarray  # (7, 2) in the image's own pixel grid
    annotators: np.ndarray | None = None  # (2, 7, 2) canonical: senior, junior

    def target(self, rng: np.random.Generator, targets: str = "mean") -> np.ndarray:
        """The points a training step learns: the annotators' mean, or ("annotators") one
        annotator drawn at random, so the heatmap learns where they disagree."""
        if targets == "mean":
            return self.points
        if targets != "annotators" or self.annotators is None:
            raise ValueError(f"unknown training targets {targets!r} (or no annotators)")
        return self.annotators[rng.integers(len(self.annotators))]


def read_gray(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise ValueError(f"{path}: not a readable image")
    return image


def load_samples(root: Path, case_ids: list[str] | None = None) -> list[Sample]:
    cases = load_isbi_cases(Path(root), case_ids)
    samples = []
    for case in cases:
        canonical, frame = preprocess(read_gray(case.image_path))
        both = np.stack([frame.to_canonical(case.senior), frame.to_canonical(case.junior)])
        samples.append(
            Sample(case.case_id, canonical, frame.to_canonical(case.mean), case.mean, both)
        )
    return samples


def all_case_ids(root: Path) -> list[str]:
    return available_case_ids(Path(root))


class Augmenter:
    """Random affine (rotation, scale, shift) and intensity (gamma, contrast, noise, blur)."""

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        rotate_deg: float = 8.0,
        scale: tuple[float, float] = (0.9, 1.1),
        shift_px: float = 25.0,
        robust: bool = False,
    ):
        self.rng = rng
        self.rotate_deg = rotate_deg
        self.scale = scale
        self.shift_px = shift_px
        self.robust = robust  # v2: wider intensity, contrast, blur and noise

    def geometry(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = image.shape
        angle = self.rng.uniform(-self.rotate_deg, self.rotate_deg)
        scale = self.rng.uniform(*self.scale)
        tx, ty = self.rng.uniform(-self.shift_px, self.shift_px, size=2)
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, scale)
        m[:, 2] += (tx, ty)
        warped = cv2.warpAffine(
            image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
        )
        idx = points - 0.5
        moved = idx @ m[:, :2].T + m[:, 2] + 0.5
        return warped, moved

    def intensity(self, image: np.ndarray) -> np.ndarray:
        if self.robust:
            return self._robust_intensity(image)
        rng = self.rng
        out = np.power(np.clip(image, 0, 1), np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
        out = out * rng.uniform(0.8, 1.2) + rng.uniform(-0.1, 0.1)
        if rng.random() < 0.2:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.2))
        sigma = rng.uniform(0.0, 0.03)
        if sigma > 0.005:
            out = out + rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def _robust_intensity(self, image: np.ndarray) -> np.ndarray:
        """Another device: gamma 0.5-2, contrast and brightness, local contrast (CLAHE-like
        unsharp masking), blur or sharpening, Gaussian noise; the order is fixed."""
        rng = self.rng
        out = np.power(np.clip(image, 0, 1), np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        out = out * rng.uniform(0.7, 1.3) + rng.uniform(-0.15, 0.15)
        if rng.random() < 0.3:  # local contrast: add back a high-pass of the image
            base = cv2.GaussianBlur(out, (0, 0), rng.uniform(8, 24))
            out = out + rng.uniform(0.3, 1.0) * (out - base)
        kind = rng.random()
        if kind < 0.3:
            out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.0))
        elif kind < 0.45:
            soft = cv2.GaussianBlur(out, (0, 0), 1.0)
            out = out + rng.uniform(0.3, 1.0) * (out - soft)
        sigma = rng.uniform(0.0, 0.05)
        if sigma > 0.005:
            out = out + rng.normal(0.0, sigma, size=out.shape).astype(np.float32)
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def __call__(self, image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        warped, moved = self.geometry(image, points)
        return self.intensity(warped), moved
