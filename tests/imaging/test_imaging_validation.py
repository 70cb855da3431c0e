"""Validation codes, spacing rules and pixel transforms on crafted files."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import cv2
import data_store
import numpy as np
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit

from mahtqa.imaging.dicom import DicomLimits, decode_radiograph, read_header
from mahtqa.imaging.errors import ImagingError
from mahtqa.imaging.write import cr_dataset, dataset_bytes, encoder_available, write_cr

DATA_STORE = Path(data_store.__file__).parent / "data"
NAME, PID = "DOE^JANE", "MRN-SECRET-77"


def _pixels(rows: int = 96, cols: int = 128) -> np.ndarray:
    return (np.arange(rows * cols, dtype=np.uint32).reshape(rows, cols) % 4096).astype(np.uint16)


def _code(data: bytes, limits: DicomLimits | None = None) -> str:
    with pytest.raises(ImagingError) as info:
        decode_radiograph(data, limits=limits or DicomLimits())
    assert NAME not in str(info.value)
    assert PID not in str(info.value)
    assert "DOE" not in info.value.message
    return info.value.code


def _ds(**kwargs: object):
    return cr_dataset(_pixels(), patient_name=NAME, patient_id=PID, **kwargs)


def test_error_type_is_stable() -> None:
    err = ImagingError("truncated", "cut")
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own object, for Celery
    assert (again.code, again.message) == ("truncated", "cut")
    with pytest.raises(ValueError, match="unknown"):
        ImagingError("no_such_code", "x")


def test_empty_and_not_dicom() -> None:
    assert _code(b"") == "empty_file"
    rng = np.random.default_rng(1)
    assert _code(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes()) == "not_dicom"
    ok, png = cv2.imencode(".png", np.zeros((80, 80), np.uint8))
    assert ok
    assert _code(png.tobytes()) == "not_dicom"
    assert _code(b"\x00" * 128 + b"DICM") == "truncated"


@pytest.mark.parametrize("name", ["RG3_UNCR.dcm", "RG1_J2KR.dcm"])
@pytest.mark.parametrize("fraction", [0.5, 0.99])
def test_cut_real_file_is_truncated(name: str, fraction: float) -> None:
    data = (DATA_STORE / name).read_bytes()
    assert _code(data[: int(len(data) * fraction)]) == "truncated"


@pytest.mark.parametrize("cut", [300, 700, 1000, 3000])
def test_cut_inside_the_header_is_truncated(cut: int) -> None:
    data = write_cr(_pixels(), patient_name=NAME, patient_id=PID)
    assert _code(data[:cut]) == "truncated"


def test_short_native_pixel_data_is_truncated() -> None:
    data = write_cr(_pixels(96, 128), extra={"Rows": 200})
    assert _code(data) == "truncated"


def test_no_pixel_data() -> None:
    ds = _ds()
    del ds.PixelData
    assert _code(dataset_bytes(ds)) == "no_pixel_data"


def test_multi_frame() -> None:
    ds = _ds()
    ds.PixelData = ds.PixelData * 2
    ds.NumberOfFrames = 2
    assert _code(dataset_bytes(ds)) == "multi_frame"


def test_rgb_is_not_grayscale() -> None:
    ds = _ds()
    ds.set_pixel_data(np.zeros((96, 128, 3), np.uint8), "RGB", 8)
    assert _code(dataset_bytes(ds)) == "not_grayscale"


def test_bogus_transfer_syntax() -> None:
    data = write_cr(_pixels())
    bogus = data.replace(b"1.2.840.10008.1.2.1\x00", b"1.2.999.777.1.2.1\x00\x00\x00", 1)
    assert bogus != data
    assert _code(bogus) == "unsupported_transfer_syntax"


def test_undecodable_compressed_stream() -> None:
    ds = cr_dataset(np.zeros((96, 128), np.uint8))
    ds.PixelData = encapsulate([b"\xff\xd8 definitely not a jpeg \xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    assert _code(dataset_bytes(ds, transfer_syntax=None)) == "unsupported_transfer_syntax"


def test_decompression_bomb_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_cr(_pixels(8, 8), extra={"Rows": 60000, "Columns": 60000})

    def boom(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("pixel decoding must not start")

    monkeypatch.setattr("pydicom.dataset.Dataset.pixel_array", property(boom))
    start = time.perf_counter()
    assert _code(data) == "image_too_large"
    with pytest.raises(ImagingError, match="image_too_large"):
        read_header(data, limits=DicomLimits())
    assert time.perf_counter() - start < 0.5


def test_size_bounds() -> None:
    assert _code(write_cr(_pixels(32, 128))) == "image_too_small"
    assert _code(write_cr(_pixels(96, 128)), DicomLimits(max_cols=100)) == "image_too_large"
    assert decode_radiograph(write_cr(_pixels(32, 128)), limits=DicomLimits(min_rows=16))


def test_modality_policy() -> None:
    mr = write_cr(_pixels(), modality="MR")
    assert _code(mr) == "modality_not_allowed"
    assert read_header(mr, limits=DicomLimits(allowed_modalities=("MR",))).modality == "MR"
    assert read_header(write_cr(_pixels(), modality="DX"), limits=DicomLimits()).modality == "DX"
    assert _code(write_cr(_pixels(), extra={"Modality": None})) == "modality_not_allowed"


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_missing_uid(keyword: str) -> None:
    assert _code(write_cr(_pixels(), extra={keyword: None})) == "missing_uid"


def test_header_fields_and_phi_hiding() -> None:
    data = write_cr(_pixels(), spacing_mm=(0.2, 0.25), patient_name=NAME, patient_id=PID)
    header = read_header(data, limits=DicomLimits())
    assert (header.rows, header.cols, header.bits_stored) == (96, 128, 12)
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert header.patient_id == PID
    assert PID not in repr(header)
    safe = header.safe_dict()
    assert "patient_id" not in safe
    assert PID not in str(safe)
    assert safe["spacing_mm"] == [0.2, 0.25]


@pytest.mark.parametrize(
    ("extra", "spacing", "source"),
    [
        ({"PixelSpacing": ["0.2", "0.25"]}, (0.2, 0.25), "PixelSpacing"),
        (
            {"PixelSpacing": ["0.2", "0.25"], "ImagerPixelSpacing": ["0.1", "0.1"]},
            (0.2, 0.25),
            "PixelSpacing",
        ),
        ({"ImagerPixelSpacing": ["0.139", "0.14"]}, (0.139, 0.14), "ImagerPixelSpacing"),
        (
            {"PixelSpacing": ["0", "0"], "ImagerPixelSpacing": ["0.15", "0.15"]},
            (0.15, 0.15),
            "ImagerPixelSpacing",
        ),
        ({"PixelSpacing": ["0", "0"]}, None, None),
        ({"PixelSpacing": ["-0.1", "0.1"]}, None, None),
        ({"PixelSpacing": "0.1"}, None, None),
        ({}, None, None),
    ],
)
def test_spacing_rules(extra: dict, spacing: tuple | None, source: str | None) -> None:
    data = write_cr(_pixels(), spacing_mm=None, extra=extra)
    header = read_header(data, limits=DicomLimits())
    assert header.spacing_mm == spacing
    assert header.spacing_source == source


def test_spacing_attribute_of_writer() -> None:
    data = write_cr(_pixels(), spacing_mm=(0.3, 0.31), spacing_attribute="ImagerPixelSpacing")
    header = read_header(data, limits=DicomLimits())
    assert header.spacing_mm == (0.3, 0.31)
    assert header.spacing_source == "ImagerPixelSpacing"


@pytest.mark.parametrize("ts", ["explicit_le", "implicit_le", "rle", "jpeg2000_lossless"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_lossless_round_trip(ts: str, dtype: type) -> None:
    if not encoder_available(ts):
        pytest.skip(f"no encoder for {ts} here")
    pixels = _pixels().astype(dtype) if dtype == np.uint16 else (_pixels() % 256).astype(dtype)
    image = decode_radiograph(write_cr(pixels, transfer_syntax=ts), limits=DicomLimits())
    assert image.pixels.dtype == np.float32
    np.testing.assert_array_equal(image.pixels, pixels.astype(np.float32))


def test_monochrome1_round_trip_is_inverted() -> None:
    pixels = _pixels()
    for ts in ("explicit_le", "rle"):
        data = write_cr(pixels, photometric="MONOCHROME1", transfer_syntax=ts)
        image = decode_radiograph(data, limits=DicomLimits())
        np.testing.assert_array_equal(image.pixels, 4095 - pixels.astype(np.float32))


def test_rescale_is_applied() -> None:
    data = write_cr(_pixels(), extra={"RescaleSlope": "2", "RescaleIntercept": "-100"})
    pixels = decode_radiograph(data, limits=DicomLimits()).pixels
    np.testing.assert_allclose(pixels, 2 * _pixels().astype(np.float32) - 100)


def test_window_is_applied() -> None:
    data = write_cr(_pixels(), extra={"WindowCenter": "1024", "WindowWidth": "1024"})
    pixels = decode_radiograph(data, limits=DicomLimits()).pixels
    raw = _pixels()
    assert pixels[raw <= 500].max() == 0
    assert pixels[raw >= 1600].min() == 4095
    mid = pixels[raw == 1024]
    assert np.all(np.abs(mid - 2047.5) < 8)


def test_monochrome1_window_inverts_within_output_range() -> None:
    extra = {"WindowCenter": "1024", "WindowWidth": "1024"}
    data = write_cr(_pixels(), photometric="MONOCHROME1", extra=extra)
    pixels = decode_radiograph(data, limits=DicomLimits()).pixels
    raw = _pixels()
    assert pixels[raw <= 500].min() == 4095  # low stored values are dense in MONOCHROME1
    assert pixels[raw >= 1600].max() == 0


def test_normalized_range() -> None:
    image = decode_radiograph(write_cr(_pixels()), limits=DicomLimits())
    norm = image.normalized()
    assert norm.dtype == np.float32
    assert norm.min() == 0.0
    assert norm.max() == 1.0
