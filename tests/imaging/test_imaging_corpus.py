"""Every file of the pydicom test corpora: decoded, or refused with a known code."""

from __future__ import annotations

import os
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest

from mahtqa.imaging.dicom import DicomLimits, decode_radiograph, read_header
from mahtqa.imaging.errors import ERROR_CODES, ImagingError

# The corpus is full of deliberately broken files; pydicom warns about each.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DATA_STORE = Path(data_store.__file__).parent / "data"
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
CORPUS = sorted(p for d in (DATA_STORE, PYDICOM_FILES) for p in d.iterdir() if p.is_file())
# Any modality and size, so the corpus exercises decoding rather than policy.
PERMISSIVE = DicomLimits(
    min_rows=1,
    min_cols=1,
    allowed_modalities=("CR", "DX", "MR", "CT", "US", "OT", "SC", "RTDOSE", "XA", "NM", "PT", "SR"),
)


def _read(name: str, folder: Path = DATA_STORE) -> bytes:
    return (folder / name).read_bytes()


def test_corpus_is_present() -> None:
    assert len(CORPUS) > 140
    assert (DATA_STORE / "RG1_UNCR.dcm").is_file()


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_file_decodes_or_fails_with_a_known_code(path: Path) -> None:
    # Anything but ImagingError propagates and fails the test.
    error: ImagingError | None = None
    try:
        image = decode_radiograph(path.read_bytes(), limits=PERMISSIVE)
    except ImagingError as exc:
        error = exc
    if error is not None:
        assert error.code in ERROR_CODES
        assert error.message
        return
    assert image.pixels.ndim == 2
    assert image.pixels.dtype == np.float32
    assert image.pixels.shape == (image.header.rows, image.header.cols)
    assert np.isfinite(image.pixels).all()


@pytest.mark.parametrize(
    ("name", "folder", "code"),
    [
        ("OT-PAL-8-face.dcm", DATA_STORE, "not_dicom"),
        ("emri_small_jpeg_2k_lossless_too_short.dcm", DATA_STORE, "truncated"),
        ("MR_truncated.dcm", PYDICOM_FILES, "truncated"),
        ("rtplan_truncated.dcm", PYDICOM_FILES, "truncated"),
        ("JPEG-lossy.dcm", PYDICOM_FILES, "unsupported_transfer_syntax"),
        ("meta_missing_tsyntax.dcm", PYDICOM_FILES, "invalid_dicom"),
        ("badVR.dcm", PYDICOM_FILES, "invalid_dicom"),
        ("ExplVR_LitEndNoMeta.dcm", PYDICOM_FILES, "not_dicom"),
        ("SC_rgb.dcm", DATA_STORE, "not_grayscale"),
        ("OBXXXX1A.dcm", DATA_STORE, "not_grayscale"),  # PALETTE COLOR
        ("emri_small.dcm", DATA_STORE, "multi_frame"),
        ("reportsi.dcm", PYDICOM_FILES, "no_pixel_data"),
    ],
)
def test_known_bad_corpus_files(name: str, folder: Path, code: str) -> None:
    with pytest.raises(ImagingError) as info:
        decode_radiograph(_read(name, folder), limits=PERMISSIVE)
    assert info.value.code == code


def test_mr_is_refused_with_default_limits() -> None:
    with pytest.raises(ImagingError) as info:
        read_header(_read("MR_small.dcm", PYDICOM_FILES), limits=DicomLimits())
    assert info.value.code == "modality_not_allowed"


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG3_UNCR.dcm", "RG3_J2KI.dcm"])
def test_real_cr_headers(name: str) -> None:
    header = read_header(_read(name), limits=DicomLimits())
    assert header.modality == "CR"
    assert header.photometric == "MONOCHROME1"
    # RG1 has PixelSpacing 0\0 (invalid, so unknown); RG3 has no spacing at all.
    assert header.spacing_mm is None
    assert header.spacing_source is None
    assert header.number_of_frames == 1


@pytest.mark.parametrize(("series", "lossy"), [("RG1", "J2KR"), ("RG3", "J2KR"), ("RG3", "J2KI")])
def test_uncompressed_and_jpeg2000_decode_alike(series: str, lossy: str) -> None:
    plain = decode_radiograph(_read(f"{series}_UNCR.dcm"), limits=DicomLimits())
    j2k = decode_radiograph(_read(f"{series}_{lossy}.dcm"), limits=DicomLimits())
    assert plain.pixels.shape == j2k.pixels.shape
    span = float(plain.pixels.max() - plain.pixels.min())
    mean_abs = float(np.abs(plain.pixels - j2k.pixels).mean())
    assert mean_abs < 0.01 * span
    assert np.corrcoef(plain.pixels.ravel(), j2k.pixels.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG3_UNCR.dcm"])
def test_monochrome1_is_inverted(name: str) -> None:
    data = _read(name)
    image = decode_radiograph(data, limits=DicomLimits())
    raw = pydicom.dcmread(DATA_STORE / name).pixel_array.astype(np.float64)
    step = 7  # a subsample is plenty for a correlation
    corr = np.corrcoef(raw[::step, ::step].ravel(), image.pixels[::step, ::step].ravel())[0, 1]
    assert corr < -0.95  # stored values run dark-is-dense; ours bright-is-dense


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG1_J2KR.dcm"])
def test_chest_radiograph_spine_brighter_than_lungs(name: str) -> None:
    pixels = decode_radiograph(_read(name), limits=DicomLimits()).pixels
    h, w = pixels.shape
    spine = pixels[int(0.3 * h) : int(0.6 * h), int(0.47 * w) : int(0.53 * w)].mean()
    left_lung = pixels[int(0.2 * h) : int(0.4 * h), int(0.2 * w) : int(0.3 * w)].mean()
    right_lung = pixels[int(0.2 * h) : int(0.4 * h), int(0.7 * w) : int(0.8 * w)].mean()
    assert spine > left_lung
    assert spine > right_lung


def test_monochrome2_is_not_inverted() -> None:
    name = "MR_small.dcm"
    image = decode_radiograph(_read(name, PYDICOM_FILES), limits=PERMISSIVE)
    raw = pydicom.dcmread(os.fspath(PYDICOM_FILES / name)).pixel_array.astype(np.float64)
    assert np.corrcoef(raw.ravel(), image.pixels.ravel())[0, 1] > 0.99
