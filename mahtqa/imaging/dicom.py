"""Reading and validating projection radiographs (CR/DX) from DICOM bytes.

``read_header`` validates everything that can be checked without decoding
pixels, so a hostile file (a decompression bomb, a multi-frame cine, a colour
photograph) is refused in well under a millisecond of work per element.
``decode_radiograph`` then decodes the single grayscale frame and returns it in
display orientation (bright = dense), after the Modality LUT and the first VOI
transform, as float32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import get_decoder
from pydicom.uid import UID

from mahtqa.imaging import _parse
from mahtqa.imaging._pixels import display_pixels
from mahtqa.imaging.errors import (
    IMAGE_TOO_LARGE,
    IMAGE_TOO_SMALL,
    INVALID_DICOM,
    MISSING_UID,
    MODALITY_NOT_ALLOWED,
    MULTI_FRAME,
    NO_PIXEL_DATA,
    NOT_GRAYSCALE,
    TRUNCATED,
    UNSUPPORTED_TRANSFER_SYNTAX,
    ImagingError,
)

SpacingSource = Literal["PixelSpacing", "ImagerPixelSpacing"]
GRAYSCALE = ("MONOCHROME1", "MONOCHROME2")
_UID_KEYWORDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True, slots=True)
class DicomLimits:
    """What an acceptable radiograph looks like; bounds are inclusive."""

    max_rows: int = 8192
    max_cols: int = 8192
    min_rows: int = 64
    min_cols: int = 64
    allowed_modalities: tuple[str, ...] = ("CR", "DX")


@dataclass(frozen=True, slots=True)
class DicomHeader:
    """The validated facts of one image. Only ``patient_id`` is PHI."""

    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    modality: str
    rows: int
    cols: int
    transfer_syntax_uid: str
    photometric: str
    bits_allocated: int
    bits_stored: int
    number_of_frames: int
    spacing_mm: tuple[float, float] | None  # (row spacing, column spacing) in mm
    spacing_source: SpacingSource | None
    # PHI: only for pseudonymising (see deid.pseudonymize); hidden from repr.
    patient_id: str = field(default="", repr=False)

    def safe_dict(self) -> dict[str, Any]:
        """Every field except PHI, JSON-ready."""
        out = asdict(self)
        out.pop("patient_id")
        if self.spacing_mm is not None:
            out["spacing_mm"] = list(self.spacing_mm)
        return out


@dataclass(frozen=True, slots=True)
class RadiographImage:
    """Decoded pixels, float32 (rows, cols), MONOCHROME2 orientation (bright = dense)."""

    pixels: np.ndarray
    header: DicomHeader

    def normalized(self) -> np.ndarray:
        """Pixels scaled to [0, 1] by their own minimum and maximum (float32)."""
        lo, hi = float(self.pixels.min()), float(self.pixels.max())
        if hi <= lo:
            return np.zeros_like(self.pixels, dtype=np.float32)
        return ((self.pixels - lo) / (hi - lo)).astype(np.float32)


def _spacing(ds: Dataset) -> tuple[tuple[float, float] | None, SpacingSource | None]:
    pixel = _parse.float_pair(ds, "PixelSpacing")
    if pixel is not None:
        return pixel, "PixelSpacing"
    imager = _parse.float_pair(ds, "ImagerPixelSpacing")
    if imager is not None:
        return imager, "ImagerPixelSpacing"
    return None, None


def _check_uids(ds: Dataset) -> None:
    for keyword in _UID_KEYWORDS:
        if not _parse.text(ds, keyword):
            raise ImagingError(MISSING_UID, f"{keyword} is missing or empty")


def _check_modality(ds: Dataset, limits: DicomLimits) -> str:
    modality = _parse.text(ds, "Modality").upper()
    if modality not in limits.allowed_modalities:
        allowed = ", ".join(limits.allowed_modalities)
        shown = modality or "none"
        raise ImagingError(MODALITY_NOT_ALLOWED, f"modality {shown} is not one of: {allowed}")
    return modality


def _check_pixel_module(ds: Dataset, span: _parse.PixelSpan | None) -> tuple[int, str]:
    if span is None and "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise ImagingError(NO_PIXEL_DATA, "float pixel data is not supported")
        raise ImagingError(NO_PIXEL_DATA, "the dataset has no PixelData")
    frames = _parse.integer(ds, "NumberOfFrames", default=1)
    if frames is None or frames < 1:
        raise ImagingError(INVALID_DICOM, "NumberOfFrames is not a positive integer")
    if frames > 1:
        raise ImagingError(MULTI_FRAME, f"{frames} frames; one frame is required")
    samples = _parse.integer(ds, "SamplesPerPixel", default=1)
    photometric = _parse.text(ds, "PhotometricInterpretation").upper()
    if samples != 1 or photometric not in GRAYSCALE:
        raise ImagingError(
            NOT_GRAYSCALE,
            f"SamplesPerPixel {samples}, PhotometricInterpretation {photometric or 'none'}",
        )
    return frames, photometric


def _check_size(ds: Dataset, limits: DicomLimits) -> tuple[int, int]:
    rows = _parse.integer(ds, "Rows")
    cols = _parse.integer(ds, "Columns")
    if rows is None or cols is None or rows <= 0 or cols <= 0:
        raise ImagingError(INVALID_DICOM, "Rows and Columns must be positive integers")
    if rows > limits.max_rows or cols > limits.max_cols:
        raise ImagingError(
            IMAGE_TOO_LARGE,
            f"{rows} x {cols} exceeds the limit {limits.max_rows} x {limits.max_cols}",
        )
    if rows < limits.min_rows or cols < limits.min_cols:
        raise ImagingError(
            IMAGE_TOO_SMALL,
            f"{rows} x {cols} is below the minimum {limits.min_rows} x {limits.min_cols}",
        )
    return rows, cols


def _check_bits(ds: Dataset) -> tuple[int, int]:
    allocated = _parse.integer(ds, "BitsAllocated")
    stored = _parse.integer(ds, "BitsStored", default=allocated)
    if allocated not in (1, 8, 16, 32) or stored is None or not 1 <= stored <= allocated:
        raise ImagingError(
            INVALID_DICOM, f"BitsAllocated {allocated} / BitsStored {stored} not supported"
        )
    return allocated, stored


def _check_transfer_syntax(
    ds: Dataset, rows: int, cols: int, allocated: int, span: _parse.PixelSpan | None
) -> str:
    ts = UID(_parse.text(ds.file_meta, "TransferSyntaxUID"))
    if not ts.is_transfer_syntax:
        raise ImagingError(UNSUPPORTED_TRANSFER_SYNTAX, f"unknown transfer syntax {ts}")
    if not ts.is_compressed:
        expected = (rows * cols * allocated + 7) // 8
        actual = span.value_length if span is not None else len(ds.PixelData)
        if actual < expected:
            raise ImagingError(
                TRUNCATED, f"PixelData has {actual} bytes, {expected} expected for {rows}x{cols}"
            )
        return str(ts)
    try:
        available = get_decoder(ts).is_available
    except (NotImplementedError, ValueError):
        available = False
    if not available:
        raise ImagingError(UNSUPPORTED_TRANSFER_SYNTAX, f"no decoder for {ts.name} ({ts})")
    return str(ts)


def _build_header(
    ds: Dataset, limits: DicomLimits, span: _parse.PixelSpan | None = None
) -> DicomHeader:
    _check_uids(ds)
    modality = _check_modality(ds, limits)
    frames, photometric = _check_pixel_module(ds, span)
    rows, cols = _check_size(ds, limits)
    allocated, stored = _check_bits(ds)
    ts = _check_transfer_syntax(ds, rows, cols, allocated, span)
    spacing, source = _spacing(ds)
    return DicomHeader(
        sop_instance_uid=_parse.text(ds, "SOPInstanceUID"),
        study_instance_uid=_parse.text(ds, "StudyInstanceUID"),
        series_instance_uid=_parse.text(ds, "SeriesInstanceUID"),
        sop_class_uid=_parse.text(ds, "SOPClassUID"),
        modality=modality,
        rows=rows,
        cols=cols,
        transfer_syntax_uid=ts,
        photometric=photometric,
        bits_allocated=allocated,
        bits_stored=stored,
        number_of_frames=frames,
        spacing_mm=spacing,
        spacing_source=source,
        patient_id=_parse.text(ds, "PatientID"),
    )


def parse_and_validate(data: bytes, *, limits: DicomLimits) -> tuple[Dataset, DicomHeader]:
    """Parse and validate; the dataset's pixel data is still undecoded bytes."""
    ds = _parse.parse(data)
    try:
        return ds, _build_header(ds, limits)
    except ImagingError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken attribute value of any kind
        raise ImagingError(INVALID_DICOM, f"invalid attribute ({type(exc).__name__})") from None


def parse_header_and_validate(
    data: bytes, *, limits: DicomLimits
) -> tuple[Dataset, DicomHeader, _parse.PixelSpan | None]:
    """As :func:`parse_and_validate`, reading no pixel data (the door's check): the
    dataset stops before the pixel data element, whose place in ``data`` is returned
    (None when the file is big-endian or deflated; its dataset is then read whole)."""
    ds, span = _parse.parse_header(data)
    try:
        return ds, _build_header(ds, limits, span), span
    except ImagingError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken attribute value of any kind
        raise ImagingError(INVALID_DICOM, f"invalid attribute ({type(exc).__name__})") from None


def read_header(data: bytes, *, limits: DicomLimits | None = None) -> DicomHeader:
    """Validate a DICOM file without decoding pixels; raise :class:`ImagingError` if refused."""
    return parse_and_validate(data, limits=limits or DicomLimits())[1]


def decode_radiograph(data: bytes, *, limits: DicomLimits | None = None) -> RadiographImage:
    """Validate and decode one grayscale radiograph (see module docstring)."""
    ds, header = parse_and_validate(data, limits=limits or DicomLimits())
    return RadiographImage(pixels=display_pixels(ds, header), header=header)
