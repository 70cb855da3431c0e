"""Image quality scoring: real cephalograms pass, degraded copies are caught.

The real-data tests read ``../shared/data`` (ISBI 2015 subset, 100 images of
640x800; Hamedan dev, 50 of 1340x1671) and skip when it is absent; the
synthetic tests always run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from mahtqa.datasets.quality import (
    QUALITY_CODES,
    QualityThresholds,
    image_quality,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ISBI = DATA / "isbi2015-subset" / "images"
HAMEDAN = DATA / "hamedan-dev" / "images"
# Real images allowed a warning or an error (at most two): none needs it today.
ALLOWED_WARNINGS: dict[str, set[str]] = {}


def _load(folder: Path) -> dict[str, np.ndarray]:
    if not folder.is_dir():
        pytest.skip(f"real data not present: {folder}")
    return {p.name: cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))}


@pytest.fixture(scope="session")
def isbi() -> dict[str, np.ndarray]:
    return _load(ISBI)


@pytest.fixture(scope="session")
def real(isbi: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    images = {f"isbi/{name}": image for name, image in isbi.items()}
    images.update({f"hamedan/{name}": image for name, image in _load(HAMEDAN).items()})
    assert len(images) == 150
    return images


def _problems(image: np.ndarray, **kwargs) -> set[str]:
    """Codes of the warnings and errors (not the info findings)."""
    report = image_quality(image, **kwargs)
    return {issue.code for issue in report.issues if issue.severity != "info"}


def _gradient(height: int = 800, width: int = 640) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return (40 + 75 * x / width + 75 * y / height).astype(np.uint8)


def _phantom(height: int = 800, width: int = 640, seed: int = 0) -> np.ndarray:
    """Overlapping ellipses with soft edges and faint noise: passes every check."""
    rng = np.random.default_rng(seed)
    image = np.full((height, width), 60, np.uint8)
    for _ in range(60):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(10, 120)), int(rng.integers(10, 120)))
        angle, grey = float(rng.uniform(0, 180)), int(rng.integers(30, 230))
        cv2.ellipse(image, centre, axes, angle, 0, 360, grey, -1)
    image = cv2.GaussianBlur(image, (0, 0), 1.0)
    return np.clip(image + rng.normal(0, 1.5, image.shape), 0, 255).astype(np.uint8)


def _noisy(image: np.ndarray) -> np.ndarray:
    noise = np.random.default_rng(0).standard_normal(image.shape, dtype=np.float32) * 25
    return np.clip(image + noise, 0, 255).astype(np.uint8)


DEGRADATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], set[str]]] = {
    "blur": (lambda im: cv2.GaussianBlur(im, (0, 0), 3), {"quality_blurry"}),
    "noise": (_noisy, {"quality_noisy"}),
    "dark": (lambda im: (im * 0.15).astype(np.uint8), {"quality_too_dark", "quality_low_contrast"}),
    "squash": (
        lambda im: (100 + im.astype(np.float32) * (40 / 255)).astype(np.uint8),
        {"quality_low_contrast"},
    ),
    "small": (
        lambda im: cv2.resize(im, (200, 250), interpolation=cv2.INTER_AREA),
        {"quality_low_resolution"},
    ),
}


def test_the_codes_are_exactly_the_documented_ones() -> None:
    assert set(QUALITY_CODES) == {
        "quality_low_contrast",
        "quality_too_dark",
        "quality_too_bright",
        "quality_blurry",
        "quality_noisy",
        "quality_saturated",
        "quality_low_resolution",
        "quality_burned_in_text",
    }
    assert all(text.strip() and "\n" not in text for text in QUALITY_CODES.values())


def test_every_real_image_passes_without_warnings(real: dict[str, np.ndarray]) -> None:
    problems = {name: _problems(image) for name, image in real.items()}
    assert {name: codes for name, codes in problems.items() if codes} == ALLOWED_WARNINGS
    scores = {image_quality(image).score for name, image in real.items()}
    assert scores == {10.0}  # info findings (burned-in text) do not lower the score


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_each_degradation_is_caught_on_every_real_image(
    real: dict[str, np.ndarray], kind: str
) -> None:
    degrade, expected = DEGRADATIONS[kind]
    wrong, small_drop = {}, {}
    for name, image in real.items():
        degraded = image_quality(degrade(image))
        codes = {i.code for i in degraded.issues if i.severity != "info"}
        if codes != expected:
            wrong[name] = codes
        if image_quality(image).score - degraded.score < 2.0:
            small_drop[name] = degraded.score
    assert wrong == {}
    assert small_drop == {}


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_each_degradation_is_caught_on_a_synthetic_phantom(kind: str) -> None:
    degrade, expected = DEGRADATIONS[kind]
    original = image_quality(_phantom())
    degraded = image_quality(degrade(_phantom()))
    assert original.issues == ()
    assert original.score == 10.0
    assert degraded.codes == expected
    assert degraded.score <= original.score - 2.0


def test_messages_give_the_figure_and_the_threshold() -> None:
    report = image_quality(cv2.GaussianBlur(_phantom(), (0, 0), 3))
    (issue,) = report.issues
    assert (issue.code, issue.severity) == ("quality_blurry", "warning")
    assert f"Sharpness {report.metrics['sharpness']:.1f} " in issue.message
    assert "is below 150" in issue.message


def test_burned_in_text_is_found_in_a_corner_of_isbi_images(isbi: dict[str, np.ndarray]) -> None:
    top_left, elsewhere, found = 0, {}, 0
    for name, image in isbi.items():
        report = image_quality(image)
        height, width = image.shape
        found += bool(report.text_boxes)
        for x, y, w, h in report.text_boxes:
            if x + w <= 0.25 * width and y + h <= 0.05 * height:
                top_left += 1
            elif not (x >= 0.5 * width and y >= 0.9 * height):  # some scans are rotated
                elsewhere[name] = (x, y, w, h)
        assert report.metrics["text_area"] == pytest.approx(
            sum(w * h for _, _, w, h in report.text_boxes) / (width * height)
        )
        assert ("quality_burned_in_text" in report.codes) == bool(report.text_boxes)
    assert found >= 0.9 * len(isbi)  # 95 of 100 carry "SN030581"
    assert top_left >= 0.75 * len(isbi)  # 80 top-left, 15 bottom-right (upside down)
    assert elsewhere == {}


def test_the_isbi_text_box_covers_the_label(isbi: dict[str, np.ndarray]) -> None:
    report = image_quality(isbi["001.png"])
    ((x, y, w, h),) = report.text_boxes
    assert x < 20  # "SN030581" in the corner of a 640x800 image
    assert y < 5
    assert 60 <= w <= 100
    assert 10 <= h <= 25
    (issue,) = report.issues
    assert (issue.code, issue.severity) == ("quality_burned_in_text", "info")


def test_no_text_on_a_smooth_gradient_or_a_phantom() -> None:
    for image in (_gradient(), _gradient(1671, 1340), _phantom()):
        report = image_quality(image)
        assert report.text_boxes == ()
        assert "quality_burned_in_text" not in report.codes
        assert report.metrics["text_area"] == 0.0


def test_synthetic_burned_in_text_is_found_top_and_bottom() -> None:
    image = np.full((800, 640), 30, np.uint8)
    cv2.putText(image, "ID 123456", (20, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_AA)
    cv2.putText(image, "2024-05-01", (420, 790), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1)
    boxes = sorted(image_quality(image).text_boxes, key=lambda box: box[1])
    assert len(boxes) == 2
    (x1, y1, _, _), (x2, y2, _, _) = boxes
    assert x1 < 30
    assert y1 < 40
    assert x2 > 400
    assert y2 > 760


def test_uint16_input_is_scaled_to_8_bits() -> None:
    image = _phantom()
    reference = image_quality(image)
    report = image_quality(image.astype(np.uint16) * 257)
    assert report.codes == reference.codes == frozenset()
    for key in ("brightness", "contrast", "sharpness", "noise"):
        assert report.metrics[key] == pytest.approx(reference.metrics[key], rel=0.01), key
    dark = image_quality((image.astype(np.uint16) * 257 * 0.15).astype(np.uint16))
    assert dark.codes == {"quality_too_dark", "quality_low_contrast"}
    raw_12_bit = image_quality(image.astype(np.uint16) << 4)  # the full 16-bit range is assumed
    assert raw_12_bit.codes == {"quality_too_dark", "quality_low_contrast"}


def _close(a: dict[str, float], b: dict[str, float], key: str, tolerance: float) -> bool:
    return abs(a[key] - b[key]) <= tolerance * max(a[key], b[key])


def test_the_same_phantom_at_two_resolutions_scores_alike() -> None:
    small = image_quality(_phantom()).metrics
    large = image_quality(cv2.resize(_phantom(), (1340, 1671), interpolation=cv2.INTER_CUBIC))
    assert all(_close(small, large.metrics, key, 0.2) for key in ("sharpness", "contrast"))
    assert large.codes == frozenset()


def test_real_images_at_two_resolutions_score_alike(real: dict[str, np.ndarray]) -> None:
    for name, image in list(real.items())[::10]:
        if name.startswith("isbi/"):  # 640x800 -> 1340x1671
            other = cv2.resize(image, (1340, 1671), interpolation=cv2.INTER_CUBIC)
            tolerance = {"sharpness": 0.2, "contrast": 0.2}
        else:  # 1340x1671 -> 640x800; two box filters in a row soften by ~25 %
            other = cv2.resize(image, (640, 800), interpolation=cv2.INTER_AREA)
            tolerance = {"sharpness": 0.35, "contrast": 0.2}
        a, b = image_quality(image), image_quality(other)
        assert all(_close(a.metrics, b.metrics, k, t) for k, t in tolerance.items()), name
        assert _problems(image) == _problems(other) == set(), name


def test_saturation_and_brightness_are_checked() -> None:
    clipped = _phantom()
    clipped[:, :240] = 255  # 37.5 % white
    assert _problems(clipped) == {"quality_saturated"}
    bright = (255 - (255 - _phantom().astype(np.float32)) * 0.15).astype(np.uint8)
    assert _problems(bright) == {"quality_too_bright", "quality_low_contrast"}
    black = _phantom()
    black[:500] = 0  # 62.5 % black: more than even a radiograph background
    assert "quality_saturated" in _problems(black)


def test_a_thresholds_override_changes_the_outcome() -> None:
    image = _phantom()
    assert _problems(image) == set()
    assert _problems(image, thresholds=QualityThresholds(min_short_side=1024)) == {
        "quality_low_resolution"
    }
    assert _problems(image, thresholds=QualityThresholds(min_sharpness=1000.0)) == {
        "quality_blurry"
    }
    blurred = cv2.GaussianBlur(image, (0, 0), 3)
    assert _problems(blurred, thresholds=QualityThresholds(min_sharpness=1.0)) == set()


def test_a_text_threshold_override_silences_the_text_finding(isbi: dict[str, np.ndarray]) -> None:
    image = isbi["001.png"]
    assert image_quality(image).text_boxes
    silenced = image_quality(image, thresholds=QualityThresholds(text_min_contrast=256))
    assert silenced.text_boxes == ()
    assert "quality_burned_in_text" not in silenced.codes


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="2-D"):
        image_quality(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="2-D"):
        image_quality(np.zeros((0, 10), np.uint8))
    with pytest.raises(TypeError, match="uint8 or uint16"):
        image_quality(np.zeros((10, 10), np.float32))


def test_dhash_tells_patients_apart_and_finds_copies_on_real_radiographs():
    """The figures the dHash docstring and NEAR_DUPLICATE_BITS rest on, on 20 shared cases."""
    import itertools
    from pathlib import Path

    import cv2
    import numpy as np
    import pytest

    from mahtqa.datasets.checks import dhash
    from mahtqa.datasets.quality import working_copy
    from mahtqa.datasets.summary import NEAR_DUPLICATE_BITS

    folder = Path(__file__).resolve().parents[2].parent / "shared/data/isbi2015-subset/images"
    if not folder.is_dir():
        pytest.skip("the shared ISBI subset is not beside the checkout")
    grays = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.iterdir())[:20]]

    def bits(a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()

    hashes = [dhash(working_copy(g)) for g in grays]
    assert min(bits(a, b) for a, b in itertools.combinations(hashes, 2)) > NEAR_DUPLICATE_BITS
    rng = np.random.default_rng(0)
    for g, h in zip(grays, hashes, strict=True):
        _, jpg = cv2.imencode(".jpg", g, [cv2.IMWRITE_JPEG_QUALITY, 85])
        copies = [
            cv2.imdecode(jpg, cv2.IMREAD_GRAYSCALE),
            cv2.resize(g, (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_AREA),
            cv2.GaussianBlur(g, (0, 0), 2),
            np.clip(g + rng.normal(0, 8, g.shape), 0, 255).astype(np.uint8),
        ]
        assert all(bits(dhash(working_copy(c)), h) <= NEAR_DUPLICATE_BITS for c in copies)
    tiny = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    assert len(dhash(tiny)) == 64


def test_checks_run_opencv_single_threaded_and_restore_its_pool() -> None:
    from mahtqa.datasets.checks import opencv_single_threaded

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        inside = []

        def failing_check() -> None:
            with opencv_single_threaded():
                inside.append(cv2.getNumThreads())
                raise RuntimeError("a failing check")

        with pytest.raises(RuntimeError):
            failing_check()
        assert inside == [1]
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(before)


def test_point_checks_report_nan_outside_and_duplicate_points_in_landmark_order(
    tmp_path: Path,
) -> None:
    from mahtqa.datasets.checks import check_image
    from mahtqa.datasets.layouts import ImageRecord

    cv2.imwrite(str(tmp_path / "a.png"), np.full((100, 80), 120, np.uint8))
    good = np.array([[20, 20], [60, 20], [62, 50], [60, 70], [62, 80], [55, 95], [60, 90]], float)
    broken = good.copy()
    broken[1] = np.nan  # N
    broken[4] = (81.0, 80.0)  # Pog: x beyond the 80-px width
    twins = good.copy()
    twins[6] = twins[5] + 0.3  # Gn on Me
    record = ImageRecord(
        key="a",
        file="a.png",
        fmt="png",
        annotations={"one": broken, "two": twins},
        spacing_mm=None,
        split="train",
    )
    result = check_image(record=record, root=tmp_path)
    mine = [
        (f.code, f.landmark, f.annotator)
        for f in result.findings
        if f.code.startswith("annotation")
    ]
    assert mine == [
        ("annotation_nan", "N", "one"),
        ("annotation_outside_image", "Pog", "one"),
        ("annotation_duplicate_points", "Gn", "two"),
    ]
    outside = next(f for f in result.findings if f.code == "annotation_outside_image")
    assert outside.message == "Pog by one at (81.0, 80.0) is outside the 80x100 image."
    assert outside.details == {"x": 81.0, "y": 80.0}
    assert result.distances == {}  # neither annotator is usable for the consistency check
