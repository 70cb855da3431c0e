"""Who a DICOM instance is about: the identifying attributes, read without pixels.

Used to feed the PHI index (keyed digests only) and to scrub free text about a
study against its own identifiers. The values returned here are PHI: callers
keep them in memory only, never log or store them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset

from mahtqa.imaging import _parse

_NAMES = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
          "ReferringPhysicianName", "PerformingPhysicianName", "OperatorsName")  # fmt: skip
_IDS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "PatientTelephoneNumbers",
        "PatientAddress", "IssuerOfPatientID", "MedicalRecordLocator")  # fmt: skip
_DATES = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_UIDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID")


@dataclass(frozen=True)
class PatientIdentity:
    names: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()
    uids: tuple[str, ...] = ()
    all_values: tuple[str, ...] = field(default=(), repr=False)


def _values(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None or value == "":
        return []
    items = value if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
    return [s for s in (str(v).strip().strip("\x00").strip() for v in items) if s]


def identity_of_dataset(ds: Dataset) -> PatientIdentity:
    names = [v for k in _NAMES for v in _values(ds, k)]
    ids = [v for k in _IDS for v in _values(ds, k)]
    dates = [v for k in _DATES for v in _values(ds, k)]
    uids = [v for k in _UIDS for v in _values(ds, k)]
    meta_uid = _parse.text(ds.file_meta, "MediaStorageSOPInstanceUID") if ds.file_meta else ""
    if meta_uid:
        uids.append(meta_uid)
    return PatientIdentity(
        names=tuple(dict.fromkeys(names)), ids=tuple(dict.fromkeys(ids)),
        dates=tuple(dict.fromkeys(dates)), uids=tuple(dict.fromkeys(uids)),
        all_values=tuple(dict.fromkeys([*names, *ids, *dates, *uids])),
    )  # fmt: skip


def identity_read(data: bytes | BinaryIO) -> PatientIdentity:
    """The identifiers of a Part-10 file, from its bytes or an open file (only the
    header is read from a file); an unreadable file identifies nobody."""
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - a file we cannot read identifies nobody we can scrub
        return PatientIdentity()
    return identity_of_dataset(ds)


@dataclass(frozen=True)
class PatientCard:
    """What a clinician checks before signing off (PHI: shown to ``view_phi`` only)."""

    name: str = ""
    patient_id: str = ""
    birth_date: str = ""
    sex: str = ""
    study_date: str = ""
    accession: str = ""

    @property
    def known(self) -> bool:
        return any((self.name, self.patient_id, self.birth_date, self.accession))


def _date(value: str) -> str:
    value = value.strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value


def _person(value: str) -> str:
    parts = [p.strip() for p in value.split("^")]
    family, given = (parts + ["", ""])[:2]
    return f"{family}, {given}" if family and given else (family or given)


def patient_card_read(data: bytes | BinaryIO) -> PatientCard:
    """The patient card of a Part-10 file (header only); unreadable: an empty card."""
    source = io.BytesIO(data) if isinstance(data, bytes | bytearray) else data
    try:
        ds = pydicom.dcmread(source, stop_before_pixels=True)
    except Exception:  # noqa: BLE001 - an unreadable original shows an empty card
        return PatientCard()

    def first(keyword: str) -> str:
        values = _values(ds, keyword)
        return values[0] if values else ""

    sex = {"M": "male", "F": "female", "O": "other"}.get(first("PatientSex").upper(), "")
    return PatientCard(
        name=_person(first("PatientName")),
        patient_id=first("PatientID"),
        birth_date=_date(first("PatientBirthDate")),
        sex=sex,
        study_date=_date(first("StudyDate")),
        accession=first("AccessionNumber"),
    )
