"""The door's header-only read (no pixel data in memory) agrees with the full read."""

from __future__ import annotations

import io
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from pydicom.datadict import tag_for_keyword
from pydicom.uid import ExplicitVRBigEndian

from mahtqa.imaging import _parse
from mahtqa.imaging.deid import KEEP, KEEP_SEQUENCES, deidentify_dataset, deidentify_parts
from mahtqa.imaging.dicom import (
    DicomLimits,
    parse_and_validate,
    parse_header_and_validate,
)
from mahtqa.imaging.errors import ImagingError
from mahtqa.imaging.write import cr_dataset, dataset_bytes, write_cr

DATA_STORE = Path(data_store.__file__).parent / "data"
KEY = b"k" * 32


def _pixels(rows: int = 96, cols: int = 128) -> np.ndarray:
    return (np.arange(rows * cols, dtype=np.uint32).reshape(rows, cols) % 4096).astype(np.uint16)


def _files() -> dict[str, bytes]:
    files = {n: (DATA_STORE / n).read_bytes() for n in ("RG1_UNCR.dcm", "RG3_J2KR.dcm")}
    for ts in ("explicit_le", "implicit_le", "rle"):
        files[ts] = write_cr(_pixels(), transfer_syntax=ts)
    return files


@pytest.mark.parametrize("name", list(_files()))
def test_same_header_no_pixels_in_memory_and_the_span_points_at_them(name: str) -> None:
    data = _files()[name]
    full_ds, full = parse_and_validate(data, limits=DicomLimits())
    ds, header, span = parse_header_and_validate(data, limits=DicomLimits())
    assert header == full
    assert "PixelData" not in ds
    assert span is not None
    assert data[span.begin : span.begin + 4] == b"\xe0\x7f\x10\x00"
    if not pydicom.uid.UID(header.transfer_syntax_uid).is_compressed:
        assert data[span.value_start : span.end] == full_ds.PixelData
    # the split copy is the writer's file, byte for byte
    parts = deidentify_parts(ds, key=KEY, raw=data, pixels=span)
    assert parts.header + data[span.begin : span.end] == deidentify_dataset(full_ds, key=KEY)


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_J2KR.dcm", "implicit_le"])
@pytest.mark.parametrize("wrap", [bytearray, lambda b: memoryview(b).toreadonly()])
def test_a_receive_buffer_reads_as_its_bytes_do(name: str, wrap) -> None:
    """Intake hands the door a view of its receive buffer, not bytes: same dataset,
    header, span and de-identified copy, without a copy of the pixels."""
    data = _files()[name]
    ds, header, span = parse_header_and_validate(data, limits=DicomLimits())
    buffer = wrap(data)
    ds_b, header_b, span_b = parse_header_and_validate(buffer, limits=DicomLimits())
    assert (header_b, span_b) == (header, span)
    assert ds_b == ds
    parts = deidentify_parts(ds_b, key=KEY, raw=buffer, pixels=span_b)
    assert parts == deidentify_parts(ds, key=KEY, raw=data, pixels=span)


def test_a_receive_buffer_refused_as_its_bytes_are() -> None:
    data = _files()["explicit_le"]
    for cut in (data[:200], data[: len(data) - 10], b"\0" * 132):
        with pytest.raises(ImagingError) as expected:
            parse_header_and_validate(cut, limits=DicomLimits())
        with pytest.raises(ImagingError) as got:
            parse_header_and_validate(memoryview(cut).toreadonly(), limits=DicomLimits())
        assert got.value.code == expected.value.code


def test_big_endian_is_read_whole() -> None:
    ds = cr_dataset(_pixels())
    ds.file_meta.TransferSyntaxUID = ExplicitVRBigEndian
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, implicit_vr=False, little_endian=False, enforce_file_format=True)
    data = buffer.getvalue()
    parsed, header, span = parse_header_and_validate(data, limits=DicomLimits())
    assert span is None
    assert "PixelData" in parsed
    assert header == parse_and_validate(data, limits=DicomLimits())[1]


def _bad_files() -> dict[str, bytes]:
    real = (DATA_STORE / "RG3_UNCR.dcm").read_bytes()
    no_pixels = cr_dataset(_pixels())
    del no_pixels.PixelData
    multi = cr_dataset(_pixels())
    multi.PixelData = multi.PixelData * 2
    multi.NumberOfFrames = 2
    rgb = cr_dataset(_pixels())
    rgb.set_pixel_data(np.zeros((96, 128, 3), np.uint8), "RGB", 8)
    return {
        "cut in the pixels": real[: int(len(real) * 0.9)],
        "cut in the header": write_cr(_pixels())[:700],
        "short native pixel data": write_cr(_pixels(96, 128), extra={"Rows": 200}),
        "no pixel data": dataset_bytes(no_pixels),
        "multi frame": dataset_bytes(multi),
        "rgb": dataset_bytes(rgb),
        "too large": write_cr(_pixels(), extra={"Rows": 9000}),
    }


@pytest.mark.parametrize("name", list(_bad_files()))
def test_every_refusal_has_the_full_reads_code(name: str) -> None:
    data = _bad_files()[name]
    with pytest.raises(ImagingError) as full:
        parse_and_validate(data, limits=DicomLimits())
    with pytest.raises(ImagingError) as door:
        parse_header_and_validate(data, limits=DicomLimits())
    assert door.value.code == full.value.code


def test_nothing_the_copy_keeps_comes_after_the_pixel_data():
    """The split copy puts the pixel data last; it may only because no kept attribute
    has a higher tag (a header-only read never sees what follows the pixels)."""
    pixel_tag = tag_for_keyword("PixelData")
    kept = {k for k in KEEP if k != "PixelData"} | set(KEEP_SEQUENCES)
    assert all(tag_for_keyword(k) < pixel_tag for k in kept)


def test_a_span_that_does_not_point_at_pixel_data_is_refused() -> None:
    data = write_cr(_pixels())
    ds, _header, span = parse_header_and_validate(data, limits=DicomLimits())
    wrong = _parse.PixelSpan(span.begin + 2, span.value_start, span.end)
    with pytest.raises(ValueError, match="pixel data"):
        deidentify_parts(ds, key=KEY, raw=data, pixels=wrong)
