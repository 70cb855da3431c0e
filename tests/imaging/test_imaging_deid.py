"""De-identification: planted PHI must not survive anywhere in the output bytes."""

from __future__ import annotations

import io
import re
from pathlib import Path

import data_store
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from mahtqa.imaging.deid import (
    deidentified_header_dict,
    deidentify,
    pseudonymize,
    pseudonymize_uid,
)
from mahtqa.imaging.dicom import DicomLimits, decode_radiograph, read_header
from mahtqa.imaging.errors import ImagingError
from mahtqa.imaging.write import cr_dataset, dataset_bytes

KEY = b"test-key-one"
OTHER_KEY = b"test-key-two"
PID = "MRN-SECRET-77"
PLANTED = {
    "PatientName": "DOE^JANE^QUINN",
    "PatientBirthDate": "19700412",
    "InstitutionName": "Springfield General Hospital",
    "InstitutionAddress": "742 Evergreen Terrace",
    "ReferringPhysicianName": "HOUSE^GREGORY",
    "PerformingPhysicianName": "WILSON^JAMES",
    "OperatorsName": "OPERATOR^PLANTED",
    "AccessionNumber": "ACC998877",
    "OtherPatientIDs": "OTHERID-555",
    "StationName": "STATION-XR9",
    "DeviceSerialNumber": "SERIAL-12345",
    "ImageComments": "COMMENT-PLANTED-XYZZY",
    "StudyDescription": "STUDY-DESC-PLANTED",
    "StudyDate": "20240117",
    "StudyTime": "101112",
    "PatientAddress": "ADDRESS-PLANTED",
    "PatientComments": "PATIENT-COMMENT-PLANTED",
}


def _planted_dataset(*, patient_id: str = PID, study_uid: str | None = None) -> Dataset:
    pixels = (np.arange(96 * 128).reshape(96, 128) % 4096).astype(np.uint16)
    ds = cr_dataset(
        pixels, spacing_mm=(0.1, 0.12), patient_id=patient_id, study_instance_uid=study_uid
    )
    for keyword, value in PLANTED.items():
        setattr(ds, keyword, value)
    ds.ImagerPixelSpacing = ["0.11", "0.13"]
    ds.PatientSex = "F"
    ds.PatientAge = "054Y"
    ds.FrameOfReferenceUID = "1.2.3.4.5.6.7.8.9"
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6.7.8.10"
    ds.ReferencedImageSequence = Sequence([item])
    requested = Dataset()
    requested.RequestingPhysician = "NESTED^PHYSICIAN"
    ds.RequestAttributesSequence = Sequence([requested])
    block = ds.private_block(0x0011, "ACME RADIOLOGY", create=True)
    block.add_new(0x01, "LO", "PRIVATE-PLANTED-4242")
    ds.add_new(0x60000022, "LO", "OVERLAY-PLANTED")
    ds.add_new(0x50000022, "LO", "CURVE-PLANTED")
    ds.file_meta.SourceApplicationEntityTitle = "AE-PLANTED"
    return ds


def _planted_bytes(**kwargs: str | None) -> tuple[bytes, Dataset]:
    ds = _planted_dataset(**kwargs)
    return dataset_bytes(ds), ds


def _read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def test_no_planted_phi_survives_anywhere() -> None:
    data, ds = _planted_bytes()
    out = deidentify(data, key=KEY)
    secrets = [
        *PLANTED.values(),
        "DOE",
        PID,
        "NESTED^PHYSICIAN",
        "PRIVATE-PLANTED-4242",
        "ACME RADIOLOGY",
        "OVERLAY-PLANTED",
        "CURVE-PLANTED",
        "AE-PLANTED",
        ds.SOPInstanceUID,
        ds.StudyInstanceUID,
        ds.SeriesInstanceUID,
        "1.2.3.4.5.6.7.8.9",
    ]
    for secret in secrets:
        assert secret.encode() in data, secret  # the test really planted it
        assert secret.encode() not in out, secret


def test_profile_markers_and_kept_attributes() -> None:
    data, ds = _planted_bytes()
    out = _read(deidentify(data, key=KEY))
    assert out.PatientIdentityRemoved == "YES"
    assert "Basic" in out.DeidentificationMethod
    codes = {item.CodeValue for item in out.DeidentificationMethodCodeSequence}
    assert codes == {"113100", "113108"}
    assert out.PatientSex == "F"
    assert out.PatientAge == "054Y"
    assert [float(v) for v in out.PixelSpacing] == [0.1, 0.12]
    assert [float(v) for v in out.ImagerPixelSpacing] == [0.11, 0.13]
    assert out.StudyDate == ""
    assert out.PatientBirthDate == ""
    assert not any(elem.tag.is_private for elem in out.iterall())
    assert not any(elem.tag.group in (0x5000, 0x6000) for elem in out)
    assert out.SOPClassUID == ds.SOPClassUID  # standard UIDs stay
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID


def test_patient_pseudonym() -> None:
    data, _ds = _planted_bytes()
    out = _read(deidentify(data, key=KEY))
    assert out.PatientID == pseudonymize(PID, key=KEY)
    assert str(out.PatientName) == out.PatientID
    assert re.fullmatch(r"PSN-[0-9a-f]{16}", out.PatientID)
    assert pseudonymize(PID, key=KEY) == pseudonymize(PID, key=KEY)
    assert pseudonymize(PID, key=KEY) != pseudonymize(PID, key=OTHER_KEY)
    assert pseudonymize(PID, key=KEY) != pseudonymize(PID + "8", key=KEY)


def test_same_patient_links_across_studies() -> None:
    first, ds1 = _planted_bytes()
    second, ds2 = _planted_bytes()
    assert ds1.StudyInstanceUID != ds2.StudyInstanceUID
    out1, out2 = _read(deidentify(first, key=KEY)), _read(deidentify(second, key=KEY))
    assert out1.PatientID == out2.PatientID
    assert out1.StudyInstanceUID != out2.StudyInstanceUID


def test_patient_without_id_is_not_linked() -> None:
    out1 = _read(deidentify(_planted_bytes(patient_id="")[0], key=KEY))
    out2 = _read(deidentify(_planted_bytes(patient_id="")[0], key=KEY))
    assert out1.PatientID.startswith("PSN-")
    assert out1.PatientID != out2.PatientID


def test_uids_replaced_consistently() -> None:
    study = "1.2.826.0.1.3680043.8.498.777"
    first, ds1 = _planted_bytes(study_uid=study)
    second, ds2 = _planted_bytes(study_uid=study)
    out1, out2 = _read(deidentify(first, key=KEY)), _read(deidentify(second, key=KEY))
    assert out1.StudyInstanceUID == out2.StudyInstanceUID == pseudonymize_uid(study, key=KEY)
    assert out1.SOPInstanceUID != out2.SOPInstanceUID
    assert out1.SOPInstanceUID == pseudonymize_uid(ds1.SOPInstanceUID, key=KEY)
    assert out1.FrameOfReferenceUID == pseudonymize_uid("1.2.3.4.5.6.7.8.9", key=KEY)
    other = _read(deidentify(first, key=OTHER_KEY))
    assert other.StudyInstanceUID != out1.StudyInstanceUID
    for uid in (out1.SOPInstanceUID, out1.StudyInstanceUID, out1.SeriesInstanceUID):
        assert uid.startswith("2.25.")
        assert UID(uid).is_valid
        assert len(uid) <= 64


def test_output_is_deterministic_and_still_valid() -> None:
    data, ds = _planted_bytes()
    out = deidentify(data, key=KEY)
    assert deidentify(data, key=KEY) == out
    header = read_header(out, limits=DicomLimits())
    assert header.spacing_mm == (0.1, 0.12)
    assert header.spacing_source == "PixelSpacing"
    assert header.patient_id == pseudonymize(PID, key=KEY)
    assert _read(out).PixelData == ds.PixelData
    original = read_header(data, limits=DicomLimits())
    expected = deidentified_header_dict(original, key=KEY)
    assert expected["sop_instance_uid"] == header.sop_instance_uid
    assert expected["study_instance_uid"] == header.study_instance_uid
    assert expected["patient_pseudonym"] == header.patient_id
    assert PID not in str(expected)


def test_compressed_real_radiograph_keeps_pixels() -> None:
    path = Path(data_store.__file__).parent / "data" / "RG3_J2KR.dcm"
    data = path.read_bytes()
    out = deidentify(data, key=KEY)
    assert _read(out).PixelData == _read(data).PixelData
    assert _read(out).file_meta.TransferSyntaxUID == _read(data).file_meta.TransferSyntaxUID
    before = decode_radiograph(data, limits=DicomLimits()).pixels
    after = decode_radiograph(out, limits=DicomLimits()).pixels
    np.testing.assert_array_equal(before, after)


def test_bad_input_and_bad_key() -> None:
    data, _ds = _planted_bytes()
    with pytest.raises(ValueError, match="key"):
        deidentify(data, key=b"")
    with pytest.raises(ImagingError) as info:
        deidentify(b"not dicom at all", key=KEY)
    assert info.value.code == "not_dicom"


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG1_J2KR.dcm", "RG3_UNCR.dcm", "RG3_J2KR.dcm"])
def test_spliced_pixel_data_gives_the_same_file_as_the_writer(name):
    """Intake copies the pixel data element from the original instead of re-writing it;
    the de-identified file is byte for byte what pydicom's writer produces."""
    import data_store
    from pydicom.uid import UID

    from mahtqa.imaging import _parse
    from mahtqa.imaging.deid import _pixel_element_span, deidentify_dataset

    raw = (Path(data_store.__file__).parent / "data" / name).read_bytes()
    ds = _parse.parse(raw)
    assert _pixel_element_span(ds, raw, UID(ds.file_meta.TransferSyntaxUID)) is not None
    spliced = deidentify_dataset(ds, key=b"k" * 32, raw=raw)
    written = deidentify_dataset(ds, key=b"k" * 32)
    assert spliced == written
    assert pydicom.dcmread(io.BytesIO(spliced)).PixelData == ds.PixelData


def _writer_only(data: bytes) -> bytes:
    """The de-identified copy from pydicom's writer alone (no original bytes given)."""
    from mahtqa.imaging import _parse
    from mahtqa.imaging.deid import deidentify_dataset

    return deidentify_dataset(_parse.parse(data), key=KEY)


@pytest.mark.parametrize("syntax", ["explicit_le", "implicit_le"])
def test_kept_elements_copied_as_read_give_the_writers_file(syntax: str) -> None:
    """The header writer copies unchanged elements from the original bytes and encodes
    only what the copy changes; the planted file (sequences, private tags, overlays,
    a nested physician) comes out byte for byte as pydicom's writer makes it."""
    ds = _planted_dataset()
    data = dataset_bytes(ds, transfer_syntax=syntax)
    assert deidentify(data, key=KEY) == _writer_only(data)


def test_non_ascii_and_multi_valued_values_go_through_pydicom() -> None:
    from mahtqa.imaging._header_write import _short_text

    ds = _planted_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientSex = "M"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Manufacturer = "Müller Röntgen"  # kept: encoded in Latin-1 from the original bytes
    data = dataset_bytes(ds)
    assert deidentify(data, key=KEY) == _writer_only(data)
    assert _read(deidentify(data, key=KEY)).Manufacturer == "Müller Röntgen"
    assert _short_text(pydicom.DataElement(0x00080070, "LO", "Müller"), implicit=False) is None
    assert _short_text(pydicom.DataElement(0x00080008, "CS", "A\\B"), implicit=False) is None
    assert _short_text(pydicom.DataElement(0x00100020, "LO", "ABC"), implicit=False) == (
        b"\x10\x00\x20\x00LO\x04\x00ABC "
    )


def test_an_element_that_cannot_be_located_is_written_anew() -> None:
    from mahtqa.imaging import _parse
    from mahtqa.imaging._header_write import raw_span

    data, _ = _planted_bytes()
    ds = _parse.parse(data)
    elem = ds["Modality"]
    begin, end = raw_span(elem, data, implicit=False)
    assert data[begin:end] == b"\x08\x00\x60\x00CS\x02\x00CR"
    elem.file_tell = None  # e.g. set by code, not read
    assert raw_span(elem, data, implicit=False) is None
    shifted = b"\x00\x00" + data  # the bytes are not where the element was read
    assert raw_span(ds["Rows"], shifted, implicit=False) is None


@pytest.mark.parametrize("syntax", ["explicit_le", "implicit_le"])
def test_every_plain_top_level_element_is_located_in_the_original(syntax: str) -> None:
    """So the writer really copies: every element but sequences and the pixel data is
    found where it was read, its bytes starting with its own tag."""
    import struct

    from mahtqa.imaging import _parse
    from mahtqa.imaging._header_write import raw_span

    data = dataset_bytes(_planted_dataset(), transfer_syntax=syntax)
    ds = _parse.parse(data)
    elements = list(ds)
    spans = [
        None if e.VR == "SQ" or e.tag == 0x7FE00010 else
        raw_span(e, data, implicit=syntax == "implicit_le")
        for e in elements
    ]  # fmt: skip
    assert sum(span is not None for span in spans) > 20
    for elem, span in zip(elements, spans, strict=True):
        if elem.VR != "SQ" and elem.tag != 0x7FE00010:
            assert data[span[0] : span[0] + 4] == struct.pack(
                "<HH", elem.tag.group, elem.tag.element
            )
    for here, after in zip(spans, spans[1:], strict=False):
        if here is not None and after is not None:
            assert here[1] == after[0]  # each ends where the next element begins
