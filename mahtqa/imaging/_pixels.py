"""Decoding a validated grayscale frame into display-oriented float32 pixels."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing
from pydicom.uid import UID

from mahtqa.imaging import _parse
from mahtqa.imaging.errors import INVALID_DICOM, UNSUPPORTED_TRANSFER_SYNTAX, ImagingError

if TYPE_CHECKING:
    from mahtqa.imaging.dicom import DicomHeader


def _decode(ds: Dataset, header: DicomHeader) -> np.ndarray:
    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - decoders raise anything on bad streams
        # Native (uncompressed) data has no decoder to fail: a failure there means
        # inconsistent pixel attributes, not a missing codec.
        compressed = UID(header.transfer_syntax_uid).is_compressed
        code = UNSUPPORTED_TRANSFER_SYNTAX if compressed else INVALID_DICOM
        raise ImagingError(
            code, f"decoding {header.transfer_syntax_uid} failed ({type(exc).__name__})"
        ) from None
    if arr.shape != (header.rows, header.cols):
        raise ImagingError(
            INVALID_DICOM, f"decoded shape {arr.shape} is not {header.rows}x{header.cols}"
        )
    return arr


def _stored_range(ds: Dataset) -> tuple[float, float]:
    """The nominal range after the Modality LUT (as pydicom's windowing assumes)."""
    if ds.get("ModalityLUTSequence"):
        bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    bits = int(ds.BitsStored)
    if _parse.integer(ds, "PixelRepresentation", default=0) == 0:
        lo, hi = 0.0, float(2**bits - 1)
    else:
        lo, hi = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope = _number(ds, "RescaleSlope", 1.0)
    intercept = _number(ds, "RescaleIntercept", 0.0)
    lo, hi = sorted((lo * slope + intercept, hi * slope + intercept))
    return lo, hi


def _number(ds: Dataset, keyword: str, default: float) -> float:
    """First value of a numeric attribute; ``default`` when absent or not a number."""
    value = ds.get(keyword)
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return float(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


def _has_window(ds: Dataset) -> bool:
    return "WindowCenter" in ds and _number(ds, "WindowWidth", 0.0) >= 1.0


def _voi(arr: np.ndarray, ds: Dataset) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Apply the first VOI LUT or window; return pixels and the nominal output range."""
    if ds.get("VOILUTSequence"):
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return apply_voi(arr, ds, 0), (0.0, float(2**bits - 1))
    if _has_window(ds):
        return apply_windowing(arr, ds, 0), _stored_range(ds)
    return arr, None


def _rescaled(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    if ds.get("ModalityLUTSequence"):
        return np.asarray(apply_modality_lut(raw, ds), dtype=np.float32)
    slope = np.float32(_number(ds, "RescaleSlope", 1.0))
    intercept = np.float32(_number(ds, "RescaleIntercept", 0.0))
    out = raw.astype(np.float32)
    if slope != 1.0:
        out *= slope
    if intercept != 0.0:
        out += intercept
    return out


def display_pixels(ds: Dataset, header: DicomHeader) -> np.ndarray:
    """Decode, apply Modality LUT and VOI, invert MONOCHROME1; float32 (rows, cols)."""
    raw = _decode(ds, header)
    try:
        pixels = _rescaled(raw, ds)
        del raw
        try:
            windowed, out_range = _voi(pixels, ds)
        except (ValueError, TypeError, AttributeError, IndexError, KeyError):
            windowed, out_range = pixels, None  # a broken VOI is ignored, not fatal
        pixels = np.asarray(windowed, dtype=np.float32)
        if header.photometric == "MONOCHROME1":
            lo, hi = out_range if out_range is not None else _stored_range(ds)
            pixels = np.float32(lo + hi) - pixels
    except ImagingError:
        raise
    except Exception as exc:  # noqa: BLE001 - LUT data of any shape may be broken
        reason = f"pixel transform failed ({type(exc).__name__})"
        raise ImagingError(INVALID_DICOM, reason) from None
    return np.ascontiguousarray(pixels, dtype=np.float32)
