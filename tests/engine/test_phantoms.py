"""Synthetic cephalogram phantoms: deterministic, anatomically ordered, decodable."""

from __future__ import annotations

import numpy as np
import pytest

from mahtqa.cephalometry.landmarks import landmark_index
from mahtqa.engine.phantoms import SPACING_MM, Phantom, make_phantom, phantom_dicom
from mahtqa.imaging.dicom import DicomLimits, decode_radiograph, read_header

S, N, A, B, POG, ME, GN = (landmark_index(k) for k in ("S", "N", "A", "B", "Pog", "Me", "Gn"))
SEEDS = range(40)


def _mm(phantom: Phantom) -> np.ndarray:
    row_mm, col_mm = phantom.spacing_mm
    return phantom.points * np.array([col_mm, row_mm])


def _angle(vertex: np.ndarray, p: np.ndarray, q: np.ndarray) -> float:
    u, v = p - vertex, q - vertex
    cos = float(np.dot(u, v) / (np.linalg.norm(u) * np.linalg.norm(v)))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def test_shape_types_and_spacing() -> None:
    phantom = make_phantom(seed=0)
    assert phantom.image.dtype == np.uint8
    assert phantom.image.shape == (800, 640)
    assert phantom.points.shape == (7, 2)
    assert phantom.spacing_mm == SPACING_MM == (0.3, 0.3023)


def test_deterministic_for_a_seed() -> None:
    one, two = make_phantom(seed=7), make_phantom(seed=7)
    np.testing.assert_array_equal(one.image, two.image)
    np.testing.assert_array_equal(one.points, two.points)
    other = make_phantom(seed=8)
    assert not np.array_equal(one.points, other.points)
    assert not np.array_equal(one.image, other.image)


@pytest.mark.parametrize(("height", "width"), [(800, 640), (400, 320), (1000, 900), (512, 512)])
@pytest.mark.parametrize("facing", ["right", "left"])
def test_points_inside_the_image(height: int, width: int, facing: str) -> None:
    for seed in range(10):
        phantom = make_phantom(seed=seed, height=height, width=width, facing=facing)
        assert phantom.image.shape == (height, width)
        x, y = phantom.points[:, 0], phantom.points[:, 1]
        assert np.all((x >= 0) & (x <= width - 1))
        assert np.all((y >= 0) & (y <= height - 1))


@pytest.mark.parametrize("facing", ["right", "left"])
def test_ordering_rules(facing: str) -> None:
    for seed in SEEDS:
        p = make_phantom(seed=seed, facing=facing).points.copy()
        if facing == "left":
            p[:, 0] = -p[:, 0]  # mirror back to a right-facing view
        assert p[N, 0] > p[S, 0], seed
        assert p[A, 1] < p[B, 1] < p[POG, 1], seed
        assert p[ME, 1] == p[:, 1].max(), seed
        assert min(p[POG, 0], p[ME, 0]) < p[GN, 0] < max(p[POG, 0], p[ME, 0]), seed
        assert p[POG, 1] < p[GN, 1] < p[ME, 1], seed


def test_left_facing_mirrors_right_facing() -> None:
    right, left = make_phantom(seed=5), make_phantom(seed=5, facing="left")
    np.testing.assert_array_equal(left.image, right.image[:, ::-1])
    np.testing.assert_allclose(left.points[:, 0], 639 - right.points[:, 0])
    np.testing.assert_allclose(left.points[:, 1], right.points[:, 1])


def test_angles_and_distances_plausible() -> None:
    snas, snbs = [], []
    for seed in SEEDS:
        phantom = make_phantom(seed=seed)
        mm = _mm(phantom)
        sna, snb = _angle(mm[N], mm[S], mm[A]), _angle(mm[N], mm[S], mm[B])
        assert sna == pytest.approx(phantom.sna_deg, abs=1e-6)
        assert snb == pytest.approx(phantom.snb_deg, abs=1e-6)
        assert 60 <= np.linalg.norm(mm[N] - mm[S]) <= 80
        assert 100 <= np.linalg.norm(mm[ME] - mm[N]) <= 135
        assert -2 <= sna - snb <= 6
        snas.append(sna)
        snbs.append(snb)
    assert abs(np.mean(snas) - 82) < 1.5
    assert abs(np.mean(snbs) - 80) < 1.5
    assert np.std(snas) > 0.5  # seeded jitter, not one fixed face


def test_landmarks_sit_on_visible_structure() -> None:
    for seed in range(10):
        phantom = make_phantom(seed=seed)
        img = phantom.image.astype(np.float64)
        background = img[:40, -40:]
        assert background.mean() < 40
        assert background.std() < 8
        half_y = round(8.0 / phantom.spacing_mm[0])  # an 8 mm neighbourhood
        half_x = round(8.0 / phantom.spacing_mm[1])
        for x, y in phantom.points.round().astype(int):
            patch = img[y - half_y : y + half_y + 1, x - half_x : x + half_x + 1]
            assert patch.std() > 15, (seed, x, y)


def test_sella_is_a_dark_fossa_above_a_bright_floor() -> None:
    phantom = make_phantom(seed=3)
    x, y = phantom.points[S].round().astype(int)
    floor_y = y + round(6.0 / phantom.spacing_mm[0])
    fossa = phantom.image[y - 1 : y + 2, x - 1 : x + 2].mean()
    floor = phantom.image[floor_y - 1 : floor_y + 2, x - 1 : x + 2].mean()
    assert floor - fossa > 60


def test_phantom_dicom_round_trip() -> None:
    data, phantom = phantom_dicom(seed=11)
    image = decode_radiograph(data, limits=DicomLimits())
    assert image.header.modality == "CR"
    assert image.header.spacing_mm == phantom.spacing_mm
    assert image.header.spacing_source == "PixelSpacing"
    assert image.header.bits_stored == 12
    assert image.pixels.shape == phantom.image.shape
    assert image.pixels.max() <= 4095
    corr = np.corrcoef(image.pixels.ravel(), phantom.image.ravel())[0, 1]
    assert corr > 0.999
    again, _ = phantom_dicom(seed=11)
    assert again == data


@pytest.mark.parametrize(
    ("kwargs", "source"),
    [
        ({"photometric": "MONOCHROME1"}, "PixelSpacing"),
        ({"transfer_syntax": "rle"}, "PixelSpacing"),
        ({"spacing_attribute": "ImagerPixelSpacing"}, "ImagerPixelSpacing"),
    ],
)
def test_phantom_dicom_variants(kwargs: dict, source: str) -> None:
    data, phantom = phantom_dicom(seed=2, **kwargs)
    header = read_header(data, limits=DicomLimits())
    assert header.spacing_source == source
    image = decode_radiograph(data, limits=DicomLimits())
    assert np.corrcoef(image.pixels.ravel(), phantom.image.ravel())[0, 1] > 0.999
