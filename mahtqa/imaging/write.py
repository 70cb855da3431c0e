"""Writing grayscale images as DICOM CR (or DX) Part-10 files.

Used for phantoms, test fixtures and exports. ``cr_dataset`` builds the dataset
(tests may then add what they need: private tags, colour, frames) and
``dataset_bytes`` serialises any dataset in the chosen transfer syntax.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import get_encoder
from pydicom.uid import (
    UID,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)

from mahtqa.imaging._header_write import dataset_write
from mahtqa.imaging.errors import UNSUPPORTED_TRANSFER_SYNTAX, ImagingError

CR_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1")
DX_FOR_PRESENTATION_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")
SECONDARY_CAPTURE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.7")

TransferSyntaxName = Literal["explicit_le", "implicit_le", "rle", "jpeg2000_lossless"]
SpacingAttribute = Literal["PixelSpacing", "ImagerPixelSpacing"]

TRANSFER_SYNTAXES: dict[str, UID] = {
    "explicit_le": ExplicitVRLittleEndian,
    "implicit_le": ImplicitVRLittleEndian,
    "rle": RLELossless,
    "jpeg2000_lossless": JPEG2000Lossless,
}


def encoder_available(transfer_syntax: str) -> bool:
    """Whether ``write_cr`` can produce this transfer syntax here."""
    uid = TRANSFER_SYNTAXES[transfer_syntax]
    return not uid.is_compressed or get_encoder(uid).is_available


def _sop_class(modality: str) -> UID:
    return {"CR": CR_IMAGE_STORAGE, "DX": DX_FOR_PRESENTATION_STORAGE}.get(
        modality, SECONDARY_CAPTURE_STORAGE
    )


def _bits_stored(pixels: np.ndarray) -> int:
    if pixels.dtype == np.uint8:
        return 8
    return 12 if int(pixels.max(initial=0)) < 4096 else 16


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    arr = np.ascontiguousarray(pixels)
    if arr.ndim != 2 or arr.dtype not in (np.uint8, np.uint16):
        raise ValueError("pixels must be a 2D uint8 or uint16 array")
    return arr


def _identity(ds: Dataset, patient_name: str, patient_id: str, modality: str) -> None:
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Manufacturer = "MAHT-QA"
    ds.BodyPartExamined = "SKULL"
    ds.ViewPosition = "LL"
    ds.PatientOrientation = ["A", "F"]  # lateral view facing right: columns run anterior


def cr_dataset(
    pixels: np.ndarray,
    *,
    spacing_mm: tuple[float, float] | None = (0.1, 0.1),
    spacing_attribute: SpacingAttribute = "PixelSpacing",
    patient_name: str = "PHANTOM^TEST",
    patient_id: str = "PHANTOM-001",
    photometric: str = "MONOCHROME2",
    modality: str = "CR",
    sop_instance_uid: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
) -> Dataset:
    """An uncompressed single-frame grayscale image dataset with its file meta."""
    arr = _check_pixels(pixels)
    sop_class = _sop_class(modality)
    sop_uid = sop_instance_uid or generate_uid()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_instance_uid or generate_uid()
    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    _identity(ds, patient_name, patient_id, modality)
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.set_pixel_data(arr, photometric, _bits_stored(arr), generate_instance_uid=False)
    if spacing_mm is not None:
        setattr(ds, spacing_attribute, [f"{float(v):.6g}" for v in spacing_mm])
    return ds


def _apply_extra(ds: Dataset, extra: Mapping[str, Any]) -> None:
    for keyword, value in extra.items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def _encode(ds: Dataset, transfer_syntax: TransferSyntaxName) -> UID:
    uid = TRANSFER_SYNTAXES[transfer_syntax]
    if not uid.is_compressed:
        ds.file_meta.TransferSyntaxUID = uid
        return uid
    if not encoder_available(transfer_syntax):
        raise ImagingError(UNSUPPORTED_TRANSFER_SYNTAX, f"no encoder for {uid.name} here")
    ds.compress(uid, generate_instance_uid=False)  # lossless: the same instance
    return uid


def dataset_bytes(
    ds: Dataset,
    *,
    transfer_syntax: TransferSyntaxName | None = "explicit_le",
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Serialise ``ds`` as a Part-10 file, compressing first if asked.

    ``transfer_syntax=None`` writes the dataset as it is, with the transfer syntax
    already in its file meta (for hand-made encapsulated data). ``extra``
    (keyword -> value, ``None`` deletes) is applied after compression, so a test
    can make the header lie about the pixel data.
    """
    if transfer_syntax is None:
        uid = UID(ds.file_meta.TransferSyntaxUID)
    else:
        uid = _encode(ds, transfer_syntax)
    if extra:
        _apply_extra(ds, extra)
    return dataset_write(ds, ts=uid)


def write_cr(
    pixels: np.ndarray,
    *,
    spacing_mm: tuple[float, float] | None = (0.1, 0.1),
    spacing_attribute: SpacingAttribute = "PixelSpacing",
    patient_name: str = "PHANTOM^TEST",
    patient_id: str = "PHANTOM-001",
    photometric: str = "MONOCHROME2",
    modality: str = "CR",
    sop_instance_uid: str | None = None,
    study_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    transfer_syntax: TransferSyntaxName = "explicit_le",
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """A valid single-frame CR Part-10 file (``spacing_mm`` is (row, column) in mm)."""
    ds = cr_dataset(
        pixels,
        spacing_mm=spacing_mm,
        spacing_attribute=spacing_attribute,
        patient_name=patient_name,
        patient_id=patient_id,
        photometric=photometric,
        modality=modality,
        sop_instance_uid=sop_instance_uid,
        study_instance_uid=study_instance_uid,
        series_instance_uid=series_instance_uid,
    )
    return dataset_bytes(ds, transfer_syntax=transfer_syntax, extra=extra)
