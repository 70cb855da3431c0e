"""Turning bytes into a pydicom dataset, with every failure mapped to an error code."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ImplicitVRLittleEndian,
)

from mahtqa.imaging import _walk
from mahtqa.imaging.errors import (
    EMPTY_FILE,
    INVALID_DICOM,
    NOT_DICOM,
    TRUNCATED,
    ImagingError,
)

PREAMBLE_LENGTH = 128
MAGIC = b"DICM"


def check_part10(data: bytes) -> None:
    """Refuse empty input and anything without the Part-10 preamble and ``DICM`` magic."""
    if not data:
        raise ImagingError(EMPTY_FILE, "the file is empty")
    if len(data) < PREAMBLE_LENGTH + len(MAGIC):
        raise ImagingError(NOT_DICOM, f"{len(data)} bytes: too short for a DICOM Part-10 file")
    if data[PREAMBLE_LENGTH : PREAMBLE_LENGTH + 4] != MAGIC:
        raise ImagingError(NOT_DICOM, "no DICM magic after the 128-byte preamble")


def _check_structure(data: bytes) -> tuple[int, int, int] | None:
    """Check the element structure; where the pixel data element lies (a little-endian
    dataset only; None otherwise or when there is none)."""
    try:
        start = _walk.meta_end(data)
        if start >= len(data):
            raise ImagingError(TRUNCATED, "the file ends after the file meta group")
        ts = pydicom.dcmread(io.BytesIO(data[:start]), stop_before_pixels=True).file_meta.get(
            "TransferSyntaxUID"
        )
        if ts is None:
            raise ImagingError(INVALID_DICOM, "the file meta group has no TransferSyntaxUID")
        if ts == DeflatedExplicitVRLittleEndian:
            return None  # the dataset is zlib-compressed; pydicom inflates and checks it
        little = ts != ExplicitVRBigEndian
        pixels = _walk.check_complete(
            data, start, implicit=ts == ImplicitVRLittleEndian, little=little
        )
        return pixels if little else None
    except _walk.Truncated as exc:
        raise ImagingError(TRUNCATED, f"the file is cut short: {exc}") from None
    except _walk.Malformed as exc:
        raise ImagingError(INVALID_DICOM, f"malformed element structure: {exc}") from None


@dataclass(frozen=True, slots=True)
class PixelSpan:
    """Where the top-level pixel data element lies in the file's bytes: its tag at
    ``begin``, its value from ``value_start``, the next element at ``end``."""

    begin: int
    value_start: int
    end: int

    @property
    def value_length(self) -> int:
        return self.end - self.value_start


def parse(data: bytes) -> Dataset:
    """Parse a complete Part-10 file (pixel data kept as bytes, never decoded here)."""
    return _parse(data, pixels=True)[0]


def parse_header(data: bytes) -> tuple[Dataset, PixelSpan | None]:
    """As :func:`parse`, checking the whole structure but reading no pixel data: the
    dataset stops before the top-level pixel data element, whose place is returned
    (None when there is none, or when the file is big-endian or deflated: then the
    dataset is read whole, pixel data included)."""
    return _parse(data, pixels=False)


def _parse(data: bytes, *, pixels: bool) -> tuple[Dataset, PixelSpan | None]:
    check_part10(data)
    span = None
    try:
        found = _check_structure(data)
        span = PixelSpan(*found) if found is not None and not pixels else None
        # Only the header when the pixels are left out: a bytearray or memoryview
        # would otherwise be copied whole into the BytesIO (bytes are shared).
        source = data[: span.begin] if span is not None else data
        ds = pydicom.dcmread(io.BytesIO(source), stop_before_pixels=span is not None)
        # pydicom converts elements lazily; touch them all so a broken value
        # fails here, inside the guard, instead of later in a caller.
        for _elem in ds.iterall():
            pass
    except ImagingError:
        raise
    except InvalidDicomError as exc:
        raise ImagingError(NOT_DICOM, f"not a readable DICOM file ({type(exc).__name__})") from None
    except EOFError:
        raise ImagingError(TRUNCATED, "the file ends inside an element") from None
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad input
        raise ImagingError(INVALID_DICOM, f"unparseable DICOM ({type(exc).__name__})") from None
    if len(ds) == 0:
        raise ImagingError(TRUNCATED, "the dataset after the file meta is empty or cut short")
    return ds, span


def text(ds: Dataset, keyword: str) -> str:
    """A single-valued string attribute, stripped; '' when absent or empty."""
    value = ds.get(keyword)
    if value is None:
        return ""
    return str(value).strip().strip("\x00").strip()


def integer(ds: Dataset, keyword: str, default: int | None = None) -> int | None:
    """A single-valued integer attribute; ``default`` when absent, empty or not a number."""
    value: Any = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def float_pair(ds: Dataset, keyword: str) -> tuple[float, float] | None:
    """A two-valued positive decimal attribute such as PixelSpacing; None if invalid."""
    value: Any = ds.get(keyword)
    if value is None:
        return None
    try:
        items = list(value) if not isinstance(value, str | bytes) else [value]
        row, col = (float(v) for v in items)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(row) and math.isfinite(col)) or row <= 0 or col <= 0:
        return None
    return (row, col)
