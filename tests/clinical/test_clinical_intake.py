"""POST /api/v1/studies/: accepted files, duplicates, and every bad input refused whole."""

from __future__ import annotations

import hashlib

import pytest
from pydicom.uid import generate_uid

from apps.clinical.models import Study

from .conftest import cr_bytes, stored_files

pytestmark = pytest.mark.django_db(transaction=True)


def test_dicom_body_is_accepted_queued_and_stored(api_client_a, phantom_bytes, tmp_path):
    resp = api_client_a.post_dicom(phantom_bytes)
    assert resp.status_code == 202, resp.json()
    body = resp.json()
    assert set(body) == {"id", "status", "url"}
    assert body["status"] == "queued"
    study = Study.objects.get(public_id=body["id"])
    assert study.submitted_by == api_client_a.user
    assert study.spacing_mm == pytest.approx((0.3, 0.3023))
    assert study.spacing_source == "PixelSpacing"
    assert len(stored_files(tmp_path)) == 2  # original (PHI store) + de-identified copy
    assert body["url"].endswith(f"/api/v1/studies/{study.public_id}/")


def test_multipart_field_file_is_accepted(api_client_a, phantom_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("x.dcm", phantom_bytes, content_type="application/dicom")
    resp = api_client_a.http.post("/api/v1/studies/", {"file": upload}, format="multipart")
    assert resp.status_code == 202, resp.json()
    assert Study.objects.count() == 1


def test_same_instance_twice_returns_the_existing_study(
    api_client_a, api_client_b, phantom_bytes, tmp_path
):
    first = api_client_a.post_dicom(phantom_bytes)
    again = api_client_a.post_dicom(phantom_bytes)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert Study.objects.count() == 1
    assert len(stored_files(tmp_path)) == 2  # the repeat's files were dropped
    other = api_client_b.post_dicom(phantom_bytes)  # another client: its own study
    assert other.status_code == 202
    assert Study.objects.count() == 2


def test_imager_pixel_spacing_is_used_and_reported(api_client_a):
    data = cr_bytes(spacing_mm=(0.15, 0.15), spacing_attribute="ImagerPixelSpacing")
    resp = api_client_a.post_dicom(data)
    assert resp.status_code == 202
    study = Study.objects.get()
    assert study.spacing_source == "ImagerPixelSpacing"
    assert study.spacing_mm == (0.15, 0.15)


def _multi_frame() -> bytes:
    import numpy as np

    from mahtqa.imaging.write import cr_dataset, dataset_bytes

    ds = cr_dataset(np.full((128, 128), 5, dtype=np.uint16))
    ds.NumberOfFrames = 2
    ds.PixelData = np.full((2, 128, 128), 5, dtype=np.uint16).tobytes()
    return dataset_bytes(ds)


BAD = {
    "empty": (lambda: b"", 400, "empty_file"),
    "not_dicom": (lambda: b"\x89PNG\r\n\x1a\n" + b"\x00" * 500, 400, "not_dicom"),
    "truncated": (lambda: cr_bytes()[:3000], 400, "truncated"),
    "no_pixels": (lambda: cr_bytes(extra={"PixelData": None}), 400, "no_pixel_data"),
    "too_large": (
        lambda: cr_bytes(extra={"Rows": 60000, "Columns": 60000}),
        413,
        "image_too_large",
    ),
    "modality": (lambda: cr_bytes(modality="MR"), 400, "modality_not_allowed"),
}


def _undecodable() -> bytes:
    from pathlib import Path

    import pydicom

    path = Path(pydicom.__file__).parent / "data" / "test_files" / "JPEG-lossy.dcm"
    ds = pydicom.dcmread(path)
    ds.Modality = "CR"
    ds.SOPInstanceUID = generate_uid()
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_its_code_and_nothing_is_stored(api_client_a, tmp_path, case):
    make, status, code = BAD[case]
    resp = api_client_a.post_dicom(make())
    assert resp.status_code == status, resp.content[:300]
    body = resp.json()
    assert body["code"] == code
    assert body["message"]
    assert Study.objects.count() == 0
    assert stored_files(tmp_path) == []


def test_multi_frame_and_rgb_are_refused(api_client_a, tmp_path):
    import numpy as np

    from mahtqa.imaging.write import cr_dataset, dataset_bytes

    rgb = cr_dataset(np.zeros((64, 64), dtype=np.uint16))
    rgb.SamplesPerPixel = 3
    rgb.PhotometricInterpretation = "RGB"
    rgb.PlanarConfiguration = 0
    rgb.BitsAllocated = rgb.BitsStored = 8
    rgb.HighBit = 7
    rgb.PixelData = np.zeros((64, 64, 3), dtype=np.uint8).tobytes()
    for data, code in [(_multi_frame(), "multi_frame"), (dataset_bytes(rgb), "not_grayscale")]:
        resp = api_client_a.post_dicom(data)
        assert resp.status_code == 400
        assert resp.json()["code"] == code
    assert Study.objects.count() == 0
    assert stored_files(tmp_path) == []


def test_upload_over_the_size_limit_is_refused(api_client_a, settings, tmp_path):
    settings.DICOM_MAX_UPLOAD_BYTES = 10_000
    resp = api_client_a.post_dicom(cr_bytes(rows=256, cols=256))
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"
    assert Study.objects.count() == 0


def test_wrong_content_type_and_missing_multipart_field(api_client_a, phantom_bytes):
    resp = api_client_a.http.post("/api/v1/studies/", data=phantom_bytes, content_type="image/png")
    assert resp.status_code == 415
    assert resp.json()["code"] == "unsupported_media_type"
    resp = api_client_a.http.post("/api/v1/studies/", {"other": "x"}, format="multipart")
    assert resp.status_code == 400
    assert resp.json()["code"] == "missing_file"
    assert Study.objects.count() == 0


def test_unknown_and_foreign_study_ids_look_the_same(api_client_a, api_client_b, phantom_bytes):
    url = api_client_a.post_dicom(phantom_bytes).json()["url"]
    assert api_client_a.get(url).status_code == 200
    foreign = api_client_b.get(url)
    unknown = api_client_b.get("/api/v1/studies/00000000-0000-4000-8000-000000000000/")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["code"] == unknown.json()["code"] == "study_not_found"
    malformed = api_client_b.get("/api/v1/studies/not-a-uuid/")
    assert malformed.status_code == 404
    assert malformed.json()["code"] == "not_found"


def test_list_shows_only_own_studies_and_filters_by_status(
    api_client_a, api_client_b, phantom_bytes
):
    api_client_a.post_dicom(phantom_bytes)
    api_client_a.post_dicom(cr_bytes(seed=1))
    api_client_b.post_dicom(cr_bytes(seed=2))
    mine = api_client_a.get("/api/v1/studies/").json()
    assert mine["count"] == 2
    assert {r["id"] for r in mine["results"]} <= set(
        str(s.public_id) for s in Study.objects.filter(submitted_by=api_client_a.user)
    )
    assert api_client_a.get("/api/v1/studies/?status=released").json()["count"] == 0
    assert api_client_a.get("/api/v1/studies/?status=queued").json()["count"] == 2
    bad = api_client_a.get("/api/v1/studies/?status=bogus")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_filter"


def test_a_full_size_radiograph_over_django_memory_limits_is_accepted(api_client_a, settings):
    # Real CRs are 10-20 MB: more than DATA_UPLOAD_MAX_MEMORY_SIZE (5 MB by default).
    data = cr_bytes(rows=2400, cols=1935, spacing_mm=(0.1, 0.1))
    assert len(data) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    resp = api_client_a.post_dicom(data)
    assert resp.status_code == 202, resp.content[:300]
    assert Study.objects.get().rows == 2400


def test_an_instance_the_worker_cannot_decode_ends_failed_with_its_code(
    api_client_a, bundled_model
):
    """Pixels are decoded once, in the worker: the door checks the header only, and a
    file whose pixels do not decode ends ``failed`` with the imaging code, readable back."""
    from apps.clinical.services import study_infer

    resp = api_client_a.post_dicom(_undecodable())
    assert resp.status_code == 202, resp.content[:300]
    study = Study.objects.get(public_id=resp.json()["id"])
    assert study_infer(study_id=study.pk) == "failed"
    back = api_client_a.get(f"/api/v1/studies/{study.public_id}/")
    assert back.status_code == 200
    assert back.json()["status"] == "failed"
    assert back.json()["error"]["code"] in {"unsupported_transfer_syntax", "undecodable_pixels"}


@pytest.mark.parametrize("name", ["RG1_UNCR.dcm", "RG3_J2KR.dcm"])
def test_pixels_are_stored_once_and_the_original_is_rebuilt_byte_for_byte(
    api_client_a, tmp_path, name
):
    """The PHI store keeps the original without its pixel data element (which lies,
    byte for byte, in the de-identified copy): the received file comes back whole."""
    import hashlib
    import io
    from pathlib import Path

    import data_store
    import pydicom

    from apps.clinical.selectors import study_original_bytes
    from mahtqa.imaging.identity import identity_read

    data = (Path(data_store.__file__).parent / "data" / name).read_bytes()
    assert api_client_a.post_dicom(data).status_code == 202
    study = Study.objects.get()
    original, deid = sorted(stored_files(tmp_path), key=lambda p: "deid" in p.parts)
    assert "deid" in deid.parts
    assert "deid" not in original.parts
    assert study.pixels_length > 0.5 * len(data)  # the pixel data element is most of it
    assert original.stat().st_size == len(data) - study.pixels_length
    head = pydicom.dcmread(io.BytesIO(original.read_bytes()))
    assert "PixelData" not in head
    assert head.PatientID == pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True).PatientID
    assert identity_read(original.read_bytes()).ids  # the header readers still work
    rebuilt = study_original_bytes(study=study)
    assert rebuilt == data
    assert hashlib.sha256(rebuilt).hexdigest() == study.file_sha256
    stored = deid.read_bytes()
    at = study.deid_pixels_at
    assert (
        stored[at : at + study.pixels_length]
        == data[study.original_pixels_at :][: study.pixels_length]
    )


def test_a_damaged_or_missing_part_is_reported_not_returned(api_client_a, tmp_path, phantom_bytes):
    from apps.clinical.selectors import OriginalUnavailable, study_original_bytes

    assert api_client_a.post_dicom(phantom_bytes).status_code == 202
    study = Study.objects.get()
    assert study_original_bytes(study=study) == phantom_bytes
    deid = next(p for p in stored_files(tmp_path) if "deid" in p.parts)
    stored = bytearray(deid.read_bytes())
    stored[-1] ^= 0xFF  # one pixel byte flipped
    deid.write_bytes(bytes(stored))
    with pytest.raises(OriginalUnavailable, match="does not match"):
        study_original_bytes(study=study)
    deid.unlink()
    with pytest.raises(OriginalUnavailable, match="missing"):
        study_original_bytes(study=study)


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024 + 7])
def test_the_body_is_read_whole_in_pieces_up_to_the_limit(settings, size):
    import io

    from apps.clinical.parsers import DicomParser
    from apps.core.errors import PayloadTooLarge

    body = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    settings.DICOM_MAX_UPLOAD_BYTES = size
    parsed = DicomParser().parse(io.BytesIO(body))  # exactly at the limit
    assert parsed.data == body
    assert parsed.sha256 == hashlib.sha256(body).hexdigest()
    if size:
        settings.DICOM_MAX_UPLOAD_BYTES = size - 1
        with pytest.raises(PayloadTooLarge):
            DicomParser().parse(io.BytesIO(body))


@pytest.mark.parametrize("broken", ["phi", "default"])
def test_a_failed_file_write_stores_nothing_and_leaves_no_file(
    api_client_a, settings, tmp_path, broken
):
    """Both files are written while the rows are inserted: either failing rolls the
    rows back and removes the other file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    storages = {k: dict(v) for k, v in settings.STORAGES.items()}
    storages[broken] = {**storages[broken], "OPTIONS": {"location": str(blocker / "x")}}
    settings.STORAGES = storages
    resp = api_client_a.post_dicom(cr_bytes(rows=1100, cols=1000))  # over 1 MiB: direct I/O
    assert resp.status_code == 503, resp.content[:300]
    assert resp.json()["code"] == "service_unavailable"
    assert Study.objects.count() == 0
    assert stored_files(tmp_path) == []
