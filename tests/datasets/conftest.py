"""Dataset fixtures: the shared sets (read-only) and small crafted copies in tmp.

``dataset_roots`` points ``MAHTQA_DATASET_ROOTS`` at a tmp folder (where tests build
their datasets) and the shared data folder, and the store at another tmp folder.
``make_isbi(name, cases, defects=...)`` copies ISBI cases into the tmp root with
defects applied; it returns the folder name to register.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest
from django.test import override_settings

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ISBI = SHARED / "isbi2015-subset"
HAMEDAN = SHARED / "hamedan-dev"
ISBI_SPACING = "0.300,0.3023"
README_MEANS = {"S": 0.86, "N": 1.42, "A": 3.37, "B": 3.03, "Pog": 0.92, "Me": 1.26, "Gn": 0.79}

needs_isbi = pytest.mark.skipif(not ISBI.is_dir(), reason="../shared/data/isbi2015-subset missing")
needs_hamedan = pytest.mark.skipif(
    not HAMEDAN.is_dir(), reason="../shared/data/hamedan-dev missing"
)


@pytest.fixture
def dataset_roots(tmp_path: Path):
    root, store = tmp_path / "root", tmp_path / "store"
    root.mkdir()
    store.mkdir()
    with override_settings(MAHTQA_DATASET_ROOTS=[root, SHARED], MAHTQA_DATASET_STORE=store):
        yield root


def _lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip()]


def copy_isbi(dest: Path, cases: list[str]) -> None:
    for sub in ("images", "annotations/senior", "annotations/junior"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for c in cases:
        shutil.copy(ISBI / "images" / f"{c}.png", dest / "images" / f"{c}.png")
        for a in ("senior", "junior"):
            shutil.copy(
                ISBI / "annotations" / a / f"{c}.txt", dest / "annotations" / a / f"{c}.txt"
            )


def defect_delete_image(dest: Path, case: str) -> None:
    (dest / "images" / f"{case}.png").unlink()


def defect_truncate(dest: Path, case: str) -> None:
    p = dest / "images" / f"{case}.png"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def defect_swap_landmarks(dest: Path, case: str, a: int = 4, b: int = 5) -> None:
    """Swap two lines (1-based ISBI numbers; default A and B) of the senior file."""
    p = dest / "annotations" / "senior" / f"{case}.txt"
    lines = _lines(p)
    lines[a], lines[b] = lines[b], lines[a]
    p.write_text("\n".join(lines) + "\n")


def defect_outside(dest: Path, case: str) -> None:
    p = dest / "annotations" / "junior" / f"{case}.txt"
    lines = _lines(p)
    lines[0] = "700.0,50.0"  # S beyond the 640-px width
    p.write_text("\n".join(lines) + "\n")


def defect_duplicate(dest: Path, case: str, new: str) -> None:
    """The same image under another case id (the split comes from the id)."""
    shutil.copy(dest / "images" / f"{case}.png", dest / "images" / f"{new}.png")
    for a in ("senior", "junior"):
        shutil.copy(
            dest / "annotations" / a / f"{case}.txt", dest / "annotations" / a / f"{new}.txt"
        )


def defect_blur(dest: Path, case: str) -> None:
    p = dest / "images" / f"{case}.png"
    cv2.imwrite(str(p), cv2.GaussianBlur(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (0, 0), 4))


def defect_shift_senior(dest: Path, case: str, line: int = 1, dx: float = 20.0) -> None:
    """Move one senior landmark (0-based line) by dx pixels."""
    p = dest / "annotations" / "senior" / f"{case}.txt"
    lines = _lines(p)
    x, y = (float(v) for v in lines[line].split(","))
    lines[line] = f"{x + dx},{y}"
    p.write_text("\n".join(lines) + "\n")


@pytest.fixture
def make_isbi(dataset_roots: Path) -> Callable[..., str]:
    def make(name: str, cases: list[str], defects: list[Callable[[Path], None]] = ()) -> str:
        dest = dataset_roots / name
        copy_isbi(dest, cases)
        for defect in defects:
            defect(dest)
        return name

    return make


@pytest.fixture
def bundled_model(db):
    """The v1 bundle registered (a real model; fast enough for a few images)."""
    from apps.models.services import model_version_bundled_register

    weights = (
        Path(__file__).resolve().parents[2] / "mahtqa" / "engine" / "bundled" / "mahtnet-v1.pt"
    )
    mv, _, _ = model_version_bundled_register(weights_file=weights)
    return mv
