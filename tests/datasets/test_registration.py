"""Registration: folders under the roots (and nothing outside), zips (and no zip
attack), the four layouts, schema mapping, spacing, splits and the content hash."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.datasets.models import Dataset, DatasetFile, DatasetVersion
from apps.datasets.services import dataset_register_folder, dataset_register_zip
from mahtqa.cephalometry.isbi import read_seven
from mahtqa.imaging.write import write_cr
from tests.datasets.conftest import ISBI, ISBI_SPACING, copy_isbi, needs_isbi

pytestmark = [pytest.mark.django_db, needs_isbi]

CASES = ["001", "002", "003"]


def _nothing_stored(store: Path) -> None:
    assert Dataset.objects.count() == 0
    assert DatasetVersion.objects.count() == 0
    uploads = store / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


def test_an_isbi_folder_registers_every_file_with_its_hash(make_isbi):
    folder = make_isbi("small", CASES)
    version = dataset_register_folder(path=folder, name="Small", spacing=ISBI_SPACING)
    assert (version.layout, version.number, version.image_count, version.file_count) == (
        "isbi",
        1,
        3,
        9,
    )
    assert version.annotators == ["junior", "senior"]
    assert version.spacing == (0.300, 0.3023)
    files = dict(DatasetFile.objects.filter(version=version).values_list("path", "sha256"))
    assert set(files) == {f"images/{c}.png" for c in CASES} | {
        f"annotations/{a}/{c}.txt" for a in ("junior", "senior") for c in CASES
    }
    image = version.images.get(key="002")
    expected = read_seven(ISBI / "annotations" / "senior" / "002.txt")
    assert np.allclose(
        np.array(image.annotations["senior"]), expected, atol=1e-3
    )  # 19 -> 7 mapping
    assert image.split in ("train", "validation", "test")
    # the same content registers as the next version with the same hash and the same splits
    again = dataset_register_folder(path=folder, name="Small", spacing=ISBI_SPACING)
    assert (again.number, again.content_hash) == (2, version.content_hash)
    assert dict(again.images.values_list("key", "split")) == dict(
        version.images.values_list("key", "split")
    )


def test_a_changed_annotation_changes_the_content_hash(make_isbi, dataset_roots):
    folder = make_isbi("hash", CASES)
    first = dataset_register_folder(path=folder, name="Hash")
    p = dataset_roots / folder / "annotations" / "senior" / "001.txt"
    p.write_text(p.read_text().replace(",", ".5,", 1))
    assert dataset_register_folder(path=folder, name="Hash").content_hash != first.content_hash


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("../etc", "path_traversal"),
        ("small/../../x", "path_traversal"),
        ("/etc", "path_outside_root"),
        ("", "path_empty"),
        ("missing-folder", "path_not_found"),
    ],
)
def test_paths_outside_the_roots_are_refused_and_nothing_is_stored(make_isbi, path, code, tmp_path):
    make_isbi("small", CASES)
    with pytest.raises(InvalidInput) as err:
        dataset_register_folder(path=path, name="Nope")
    assert err.value.code == code
    _nothing_stored(tmp_path / "store")


def test_a_symlink_out_of_the_root_is_refused(dataset_roots, tmp_path):
    outside = tmp_path / "outside"
    copy_isbi(outside, CASES)
    os.symlink(outside, dataset_roots / "link")
    with pytest.raises(InvalidInput) as err:
        dataset_register_folder(path="link", name="Nope")
    assert err.value.code == "path_outside_root"
    _nothing_stored(tmp_path / "store")


def _zip_of(folder: Path, *, prefix: str = "") -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    buf.seek(0)
    return buf


def test_an_uploaded_zip_of_one_folder_registers(make_isbi, dataset_roots, tmp_path):
    folder = make_isbi("zipped", CASES)
    version = dataset_register_zip(
        upload=_zip_of(dataset_roots / folder, prefix="zipped/"),
        name="Zipped",
        filename="zipped.zip",
        spacing=ISBI_SPACING,
    )
    assert (version.source_kind, version.image_count, version.layout) == ("upload", 3, "isbi")
    assert Path(version.root_path).is_relative_to(tmp_path / "store" / "uploads")
    assert version.root_label == "upload/zipped.zip"


def _evil(name: str, data: bytes = b"x") -> io.BytesIO:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images/001.png", b"not really")
        zf.writestr(name, data)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../b.txt", "C:\\evil.txt"])
def test_zip_slip_is_refused_and_nothing_is_stored(dataset_roots, tmp_path, name):
    with pytest.raises(InvalidInput) as err:
        dataset_register_zip(upload=_evil(name), name="Evil")
    assert err.value.code == "zip_slip"
    _nothing_stored(tmp_path / "store")
    assert not (tmp_path / "evil.txt").exists()


def test_a_zip_bomb_is_refused(dataset_roots, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/bomb.png", b"\0" * (64 * 1024 * 1024))
    buf.seek(0)
    limit = override_settings(MAHTQA_DATASET_ZIP_MAX_UNCOMPRESSED=16 * 1024 * 1024)
    with limit, pytest.raises(PayloadTooLarge) as err:
        dataset_register_zip(upload=buf, name="Bomb")
    assert err.value.code == "zip_bomb"
    _nothing_stored(tmp_path / "store")


def test_too_many_entries_and_too_large_archives_are_refused(dataset_roots, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(30):
            zf.writestr(f"images/{i:03d}.png", b"x")
    for setting, value, code in (
        ("MAHTQA_DATASET_ZIP_MAX_ENTRIES", 10, "zip_too_many_entries"),
        ("MAHTQA_DATASET_ZIP_MAX_BYTES", 100, "zip_too_large"),
    ):
        buf.seek(0)
        with override_settings(**{setting: value}), pytest.raises(PayloadTooLarge) as err:
            dataset_register_zip(upload=buf, name="Many")
        assert err.value.code == code
    _nothing_stored(tmp_path / "store")


def test_not_a_zip_is_refused(dataset_roots, tmp_path):
    with pytest.raises(InvalidInput) as err:
        dataset_register_zip(upload=io.BytesIO(b"PK\x03\x04 definitely not a zip"), name="Bad")
    assert err.value.code == "zip_invalid"
    _nothing_stored(tmp_path / "store")


def test_a_csv_table_registers_with_splits_and_spacing(dataset_roots):
    dest = dataset_roots / "table"
    copy_isbi(dest, CASES)
    rows = ["image,annotator,landmark,x,y,split,spacing_row_mm,spacing_col_mm"]
    for c in CASES:
        pts = read_seven(ISBI / "annotations" / "senior" / f"{c}.txt")
        for name, (x, y) in zip(("S", "N", "A", "B", "Pog", "Me", "Gn"), pts, strict=True):
            rows.append(f"images/{c}.png,reader1,{name},{x},{y},test,0.3,0.3023")
    (dest / "landmarks.csv").write_text("\n".join(rows) + "\n")
    version = dataset_register_folder(path="table", name="Table", layout="csv")
    assert (version.layout, version.image_count, version.annotators) == ("csv", 3, ["reader1"])
    img = version.images.get(key="001")
    assert (img.split, img.spacing) == ("test", (0.3, 0.3023))


def test_a_json_table_wins_over_the_folder_shape(dataset_roots):
    dest = dataset_roots / "json"
    copy_isbi(dest, CASES)
    doc = {
        "images": [
            {
                "file": f"images/{c}.png",
                "split": "train",
                "spacing_mm": [0.3, 0.3023],
                "annotations": {
                    "a": (read_seven(ISBI / "annotations" / "senior" / f"{c}.txt")).tolist()
                },
            }
            for c in CASES
        ]
    }
    (dest / "landmarks.json").write_text(json.dumps(doc))
    version = dataset_register_folder(path="json", name="Json")
    assert (version.layout, version.image_count) == ("json", 3)
    assert len(version.images.get(key="003").annotations["a"]) == 7


def test_a_broken_table_is_refused_with_its_reason(dataset_roots):
    dest = dataset_roots / "badtable"
    copy_isbi(dest, CASES[:1])
    (dest / "landmarks.csv").write_text("image,x\nimages/001.png,1\n")
    with pytest.raises(InvalidInput) as err:
        dataset_register_folder(path="badtable", name="Bad", layout="csv")
    assert err.value.code == "table_invalid"
    assert Dataset.objects.count() == 0


def test_a_dicom_folder_is_deidentified_on_import_with_spacing_from_headers(
    dataset_roots, tmp_path
):
    dest = dataset_roots / "dicoms"
    dest.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        pixels = (rng.random((400, 320)) * 4000).astype(np.uint16)
        (dest / f"DOE_JOHN_{i}.dcm").write_bytes(
            write_cr(
                pixels, spacing_mm=(0.15, 0.15), patient_name="DOE^JOHN", patient_id=f"PID-{i}"
            )
        )
    version = dataset_register_folder(path="dicoms", name="Dicom")
    assert (version.layout, version.image_count) == ("dicom", 2)
    stored = sorted(Path(version.root_path).rglob("*.dcm"))
    assert len(stored) == 2
    for image in version.images.all():
        assert image.spacing == (0.15, 0.15)
        assert "DOE" not in image.key
        assert "DOE" not in image.file
    for p in stored:
        assert b"DOE^JOHN" not in p.read_bytes()
        assert b"PID-" not in p.read_bytes()


@pytest.mark.parametrize("spacing", ["abc", "0,0", "1,2,3", "9"])
def test_a_bad_spacing_is_refused(make_isbi, spacing):
    folder = make_isbi("spacing", CASES[:1])
    with pytest.raises(InvalidInput) as err:
        dataset_register_folder(path=folder, name="S", spacing=spacing)
    assert err.value.code == "invalid_spacing"


def test_the_api_refuses_traversal_with_a_json_error(make_isbi, engineer):
    make_isbi("small", CASES)
    client = APIClient()
    client.force_authenticate(engineer)
    r = client.post("/api/v1/datasets/", {"name": "X", "path": "../small"}, format="json")
    assert r.status_code == 400
    assert r.json()["code"] == "path_traversal"
    r = client.post("/api/v1/datasets/", {"name": "X"}, format="json")
    assert (r.status_code, r.json()["code"]) == (400, "path_or_file")
    assert Dataset.objects.count() == 0


def test_the_api_refuses_a_zip_bomb_with_413(dataset_roots, engineer, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("images/bomb.png", b"\0" * (40 * 1024 * 1024))
    buf.seek(0)
    buf.name = "bomb.zip"
    client = APIClient()
    client.force_authenticate(engineer)
    with override_settings(MAHTQA_DATASET_ZIP_MAX_UNCOMPRESSED=8 * 1024 * 1024):
        r = client.post("/api/v1/datasets/", {"name": "Bomb", "file": buf}, format="multipart")
    assert (r.status_code, r.json()["code"]) == (413, "zip_bomb")
    _nothing_stored(tmp_path / "store")
