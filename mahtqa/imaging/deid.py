"""De-identification after DICOM PS3.15 Annex E, Basic Application Level
Confidentiality Profile, with the Retain Patient Characteristics Option.

Choices (see also docs):
- Allowlist, not denylist. The Basic Profile lists attributes to remove; we keep
  only an explicit list of technical attributes (image pixel, spacing, LUT,
  exposure and equipment-type facts) and drop everything else, so an attribute
  the profile's table does not know (a vendor text field, a planted comment, a
  new standard attribute) cannot leak. This is stricter than the profile.
- All private tags, curves (50xx) and overlays (60xx) go (not on the allowlist).
- Patient characteristics are retained (sex, age, size, weight: option 113108);
  they matter for cephalometric norms and are not identifying on their own.
- Dates and times are removed: the Type 2 ones (study date/time, birth date) are
  kept empty so the CR IOD stays valid; longitudinal information is REMOVED.
- PatientID and PatientName become the keyed pseudonym of the original
  PatientID, so one patient's studies still link under one key.
- Every non-standard UID (instance, study, series, frame of reference) becomes
  ``2.25.<int of HMAC-SHA256>``: deterministic per key, so references stay consistent.
- Pixel data is kept byte for byte; burned-in text in the pixels is not removed
  (BurnedInAnnotation is kept so a caller can refuse such images).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.datadict import keyword_for_tag as keyword_for
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

from mahtqa.imaging import _parse
from mahtqa.imaging._header_write import dataset_write, header_write
from mahtqa.imaging.dicom import DicomHeader
from mahtqa.imaging.errors import INVALID_DICOM, MISSING_UID, ImagingError

PSEUDONYM_PREFIX = "PSN-"
# DeidentificationMethod is LO: at most 64 characters.
METHOD = "PS3.15 Basic Profile, Retain Patient Chars; MAHT-QA allowlist"
_PROFILE_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
)

# Kept as they are (UIDs among them are remapped).
KEEP: frozenset[str] = frozenset(
    {
        "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID",
        "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID",
        "Modality", "Manufacturer", "ManufacturerModelName", "BodyPartExamined",
        "ViewPosition", "PatientOrientation", "PatientPosition", "ImageLaterality",
        "Laterality", "SeriesNumber", "InstanceNumber", "AcquisitionNumber",
        "PatientSex", "PatientAge", "PatientSize", "PatientWeight",
        "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
        "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
        "PlanarConfiguration", "PixelAspectRatio", "NumberOfFrames",
        "SmallestImagePixelValue", "LargestImagePixelValue", "PixelPaddingValue",
        "PixelPaddingRangeLimit", "PixelData",
        "PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing",
        "PixelSpacingCalibrationType", "EstimatedRadiographicMagnificationFactor",
        "DistanceSourceToDetector", "DistanceSourceToPatient", "FieldOfViewShape",
        "FieldOfViewDimensions", "DetectorType", "PlateType", "PhosphorType", "Grid",
        "FocalSpots", "KVP", "ExposureTime", "XRayTubeCurrent", "Exposure",
        "ExposureInuAs", "Sensitivity", "ExposureIndex", "TargetExposureIndex",
        "DeviationIndex", "RescaleIntercept", "RescaleSlope", "RescaleType",
        "WindowCenter", "WindowWidth", "VOILUTFunction", "PresentationLUTShape",
        "PixelIntensityRelationship", "PixelIntensityRelationshipSign",
        "LossyImageCompression", "LossyImageCompressionRatio",
        "LossyImageCompressionMethod", "BurnedInAnnotation", "RecognizableVisualFeatures",
        "QualityControlImage",
    }
)  # fmt: skip
# Sequences kept, with only these attributes in their items.
KEEP_SEQUENCES: dict[str, frozenset[str]] = {
    "ModalityLUTSequence": frozenset({"LUTDescriptor", "ModalityLUTType", "LUTData"}),
    "VOILUTSequence": frozenset({"LUTDescriptor", "LUTData"}),
}
# Type 2 attributes of the CR IOD: present but empty.
EMPTY: tuple[str, ...] = (
    "PatientBirthDate", "StudyDate", "StudyTime", "ReferringPhysicianName",
    "StudyID", "AccessionNumber",
)  # fmt: skip


def _digest(key: bytes, purpose: str, value: str) -> bytes:
    if not key:
        raise ValueError("a non-empty de-identification key is required")
    message = f"{purpose}\x00{value}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()


def pseudonymize(value: str, *, key: bytes) -> str:
    """Stable keyed pseudonym of an identifier: ``PSN-`` + 16 hex digits."""
    return PSEUDONYM_PREFIX + _digest(key, "patient-id", value.strip()).hex()[:16]


def pseudonymize_uid(uid: str, *, key: bytes) -> str:
    """Deterministic replacement UID ``2.25.<128-bit int>`` for an instance UID."""
    raw = bytearray(_digest(key, "uid", uid.strip().strip("\x00"))[:16])
    raw[6] = (raw[6] & 0x0F) | 0x80  # UUID version 8 (custom)
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return "2.25." + str(int.from_bytes(raw, "big"))


def patient_pseudonym(patient_id: str, study_instance_uid: str, *, key: bytes) -> str:
    """The pseudonym of a patient; without an ID every study is its own patient."""
    if patient_id.strip():
        return pseudonymize(patient_id, key=key)
    return pseudonymize("no-patient-id:" + study_instance_uid, key=key)


def _is_standard_uid(value: str) -> bool:
    """A UID from the standard (SOP class, transfer syntax, coding scheme...)."""
    return UID(value).is_valid and UID(value).name != value


def _map_uid_value(value: Any, key: bytes) -> Any:
    if isinstance(value, MultiValue | list):
        return [_map_uid_value(v, key) for v in value]
    text = str(value).strip().strip("\x00")
    if not text or _is_standard_uid(text):
        return text
    return pseudonymize_uid(text, key=key)


def _copy_kept(src: Dataset, dst: Dataset, key: bytes) -> None:
    for elem in src:
        keyword = elem.keyword
        if elem.tag.is_private or keyword not in KEEP:
            continue
        if elem.VR == "UI" and (mapped := _map_uid_value(elem.value, key)) != elem.value:
            dst[elem.tag] = pydicom.DataElement(elem.tag, "UI", mapped)
        else:
            dst[elem.tag] = elem
    for keyword, allowed in KEEP_SEQUENCES.items():
        if keyword in src:
            items = []
            for item in src[keyword].value:
                clean = Dataset()
                for elem in item:
                    if elem.keyword in allowed:
                        clean[elem.tag] = elem
                items.append(clean)
            setattr(dst, keyword, Sequence(items))


def _profile_codes() -> Sequence:
    items = []
    for value, meaning in _PROFILE_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    return Sequence(items)


def _file_meta(src: Dataset, dst: Dataset) -> FileMetaDataset:
    meta = FileMetaDataset()
    sop_class = dst.get("SOPClassUID") or src.file_meta.get("MediaStorageSOPClassUID")
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = dst.SOPInstanceUID
    meta.TransferSyntaxUID = src.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "MAHTQA_DEID"
    return meta


def _deidentified_dataset(src: Dataset, key: bytes) -> Dataset:
    dst = Dataset()
    _copy_kept(src, dst, key)
    pseudonym = patient_pseudonym(
        _parse.text(src, "PatientID"), _parse.text(src, "StudyInstanceUID"), key=key
    )
    dst.PatientName = pseudonym
    dst.PatientID = pseudonym
    for keyword in EMPTY:
        setattr(dst, keyword, "")
    dst.PatientIdentityRemoved = "YES"
    dst.DeidentificationMethod = METHOD
    dst.DeidentificationMethodCodeSequence = _profile_codes()
    dst.LongitudinalTemporalInformationModified = "REMOVED"
    dst.file_meta = _file_meta(src, dst)
    return dst


def deidentify(data: bytes, *, key: bytes) -> bytes:
    """A de-identified copy of a Part-10 file (see module docstring); pixels unchanged."""
    _digest(key, "check", "")  # refuses an empty key before any work
    return deidentify_dataset(_parse.parse(data), key=key, raw=data)


def deidentify_dataset(src: Dataset, *, key: bytes, raw: bytes | None = None) -> bytes:
    """As :func:`deidentify`, from a dataset already parsed (and validated) by the
    caller, so a file is parsed once at the door. ``src`` is not modified.

    ``raw``: the file ``src`` was parsed from. When given, the pixel data element is
    copied from it byte for byte after the re-encoded header (pydicom's writer would
    copy a 7 MB radiograph twice); any doubt about its position falls back to the
    writer. The result is the same file either way (tests compare them)."""
    copy = deidentify_parts(src, key=key, raw=raw)
    if copy.pixels is None or raw is None:
        return copy.header
    begin, end = copy.pixels
    return copy.header + raw[begin:end]


@dataclass(frozen=True)
class DeidentifiedParts:
    """A de-identified copy in two parts, so a caller can write it without joining
    them: ``header`` (the re-encoded file up to the pixel data) followed by the bytes
    ``raw[pixels[0]:pixels[1]]`` of the original file (the whole (7FE0,0010) element,
    byte for byte). ``pixels`` is None when the header is the whole copy."""

    header: bytes
    pixels: tuple[int, int] | None


def deidentify_parts(
    src: Dataset,
    *,
    key: bytes,
    raw: bytes | None = None,
    pixels: _parse.PixelSpan | None = None,
) -> DeidentifiedParts:
    """As :func:`deidentify_dataset`, in two parts (see :class:`DeidentifiedParts`).

    ``pixels``: where the pixel data element lies in ``raw`` when ``src`` was read
    without it (:func:`mahtqa.imaging._parse.parse_header`)."""
    _digest(key, "check", "")
    if not _parse.text(src, "SOPInstanceUID"):
        raise ImagingError(MISSING_UID, "SOPInstanceUID is missing or empty")
    if pixels is not None and (
        raw is None or "PixelData" in src or raw[pixels.begin : pixels.begin + 4] != _PIXEL_TAG_LE
    ):
        raise ValueError("pixels must say where the pixel data of raw lies, read apart")
    try:
        dst = _deidentified_dataset(src, key)
        ts = UID(src.file_meta.TransferSyntaxUID)
        if pixels is not None:
            span = (pixels.begin, pixels.end)
        else:
            span = _pixel_element_span(src, raw, ts) if raw is not None else None
        if span is not None and "PixelData" in dst:
            del dst.PixelData
        if raw is not None and ts.is_little_endian and not ts.is_deflated:
            header = header_write(dst, src=src, raw=raw, ts=ts)  # kept elements as read
        else:
            header = dataset_write(dst, ts=ts)
    except Exception as exc:  # noqa: BLE001 - any writer failure is a bad input
        # The exception text may quote attribute values (PHI): only its type is kept.
        raise ImagingError(
            INVALID_DICOM, f"cannot write a de-identified copy ({type(exc).__name__})"
        ) from None
    return DeidentifiedParts(header=header, pixels=span)


_PIXEL_TAG_LE = b"\xe0\x7f\x10\x00"
_SEQ_DELIMITER_LE = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def _pixel_element_span(src: Dataset, raw: bytes, ts: UID) -> tuple[int, int] | None:
    """Where the whole (7FE0,0010) element lies in ``raw``, or None when unsure.

    Only for little-endian, non-deflated syntaxes, when PixelData is the last
    element the copy keeps (nothing after it is on the allowlist)."""
    if not ts.is_little_endian or ts.is_deflated or "PixelData" not in src:
        return None
    elem = src["PixelData"]
    start = getattr(elem, "file_tell", None)
    if start is None or not isinstance(elem.value, bytes):
        return None
    header = 8 if ts.is_implicit_VR else 12
    begin = start - header
    end = start + len(elem.value) + (len(_SEQ_DELIMITER_LE) if elem.is_undefined_length else 0)
    if begin < 0 or end > len(raw) or raw[begin : begin + 4] != _PIXEL_TAG_LE:
        return None
    if elem.is_undefined_length and raw[end - 8 : end] != _SEQ_DELIMITER_LE:
        return None
    if any(tag > elem.tag and keyword_for(tag) in KEEP for tag in src.keys()):  # noqa: SIM118 - tags, not elements
        return None
    return begin, end


def deidentified_header_dict(header: DicomHeader, *, key: bytes) -> dict[str, Any]:
    """``header.safe_dict()`` with UIDs remapped as ``deidentify`` does, plus the pseudonym."""
    out = header.safe_dict()
    for field_name in ("sop_instance_uid", "study_instance_uid", "series_instance_uid"):
        if out[field_name]:
            out[field_name] = pseudonymize_uid(out[field_name], key=key)
    out["patient_pseudonym"] = patient_pseudonym(
        header.patient_id, header.study_instance_uid, key=key
    )
    return out
