"""Registering a dataset version: from a folder under a configured root, from an
uploaded zip (extracted safely), or derived from another version (corrected
annotations). Everything is stored in one transaction, or nothing is."""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max

from apps.core.errors import InvalidInput, PayloadTooLarge
from apps.datasets.choices import Layout, SourceKind
from apps.datasets.models import Dataset, DatasetFile, DatasetImage, DatasetVersion
from apps.models.files import sha256_file
from mahtqa.datasets.layouts import LayoutError, Manifest, read_manifest
from mahtqa.datasets.safe_io import UnsafeInput, ZipLimits, extract_zip_safely, resolve_under_roots

_TOO_LARGE = {"zip_too_large", "zip_bomb", "zip_too_many_entries"}


def _points_json(points: np.ndarray) -> list[list[float] | None]:
    return [
        None if not np.all(np.isfinite(p)) else [round(float(p[0]), 3), round(float(p[1]), 3)]
        for p in points
    ]


def content_hash(*, files: list[tuple[str, str]], annotations: dict[str, Any]) -> str:
    """sha256 over every (path, sha256) and the annotations, in a canonical order."""
    digest = hashlib.sha256()
    for path, sha in sorted(files):
        digest.update(f"{path}\t{sha}\n".encode())
    digest.update(json.dumps(annotations, sort_keys=True, separators=(",", ":")).encode())
    return digest.hexdigest()


def parse_spacing(value: str) -> tuple[float, float] | None:
    """'ROW_MM,COL_MM' (or one number for both) -> (row, col); '' -> None."""
    if not value:
        return None
    parts = [p.strip() for p in value.split(",")]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) == 1:
        nums *= 2
    if len(nums) != 2 or not all(0.01 <= n <= 5.0 for n in nums):
        raise InvalidInput(
            "invalid_spacing",
            "Spacing is 'ROW_MM,COL_MM' with values 0.01-5 mm.",
            details={"field": "spacing"},
        )
    return (nums[0], nums[1])


def _dataset(name: str, user: Any) -> Dataset:
    _dataset_name_ok(name)
    name = name.strip()
    dataset, _ = Dataset.objects.get_or_create(name=name, defaults={"created_by": user})
    return dataset


def _read(root: Path, layout: str, spacing: tuple[float, float] | None) -> Manifest:
    if layout and layout not in Layout.values:
        raise InvalidInput(
            "invalid_layout",
            f"Layout is one of {', '.join(Layout.values)}.",
            details={"field": "layout"},
        )
    try:
        return read_manifest(
            root, layout=layout, spacing=spacing, max_files=settings.MAHTQA_DATASET_MAX_FILES
        )
    except (LayoutError, UnsafeInput) as exc:
        raise InvalidInput(exc.code, exc.message) from None


def _dicom_import(manifest: Manifest, root: Path) -> Path:
    """De-identify every DICOM file into the store (PHI never stays in a dataset); the
    images get pseudonymous keys and the spacing of their own headers."""
    from mahtqa.imaging.deid import deidentify, pseudonymize
    from mahtqa.imaging.dicom import read_header
    from mahtqa.imaging.errors import ImagingError

    key = settings.PHI_PSEUDONYM_KEY.encode()
    dest = settings.MAHTQA_DATASET_STORE / "dicom" / uuid.uuid4().hex
    (dest / "images").mkdir(parents=True)
    for rec in manifest.images:
        data = (root / rec.file).read_bytes()
        pseudo = pseudonymize(rec.key, key=key)[:16]
        rec.key, rec.file = pseudo, f"images/{pseudo}.dcm"
        try:
            header = read_header(data)
            data = deidentify(data, key=key)
            rec.spacing_mm = header.spacing_mm or rec.spacing_mm
        except ImagingError:
            pass  # kept as is, unreadable: the validation run reports it (image_corrupted)
        (dest / rec.file).write_bytes(data)
    manifest.files = [rec.file for rec in manifest.images]
    return dest


def _store(
    *,
    manifest: Manifest,
    root: Path,
    label: str,
    name: str,
    kind: str,
    user: Any,
    spacing: tuple[float, float] | None,
    notes: str = "",
    parent: DatasetVersion | None = None,
) -> DatasetVersion:
    shas = {f: sha256_file(root / f) for f in manifest.files}
    sizes = {f: (root / f).stat().st_size for f in manifest.files}
    annotations = {
        r.key: {a: _points_json(p) for a, p in r.annotations.items()} for r in manifest.images
    }
    digest = content_hash(files=list(shas.items()), annotations=annotations)
    with transaction.atomic():
        dataset = _dataset(name, user)
        number = (dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=number,
            layout=manifest.layout,
            source_kind=kind,
            root_path=str(root),
            root_label=label,
            content_hash=digest,
            schema=manifest.schema,
            annotators=manifest.annotators,
            image_count=len(manifest.images),
            file_count=len(shas),
            total_bytes=sum(sizes.values()),
            spacing_row_mm=spacing[0] if spacing else None,
            spacing_col_mm=spacing[1] if spacing else None,
            layout_problems=[p.__dict__ for p in manifest.problems],
            notes=notes,
            parent=parent,
            created_by=user if getattr(user, "pk", None) else None,
        )
        DatasetFile.objects.bulk_create(
            [
                DatasetFile(version=version, path=f, sha256=s, size=sizes[f])
                for f, s in shas.items()
            ],
            batch_size=2000,
        )
        DatasetImage.objects.bulk_create(
            [
                DatasetImage(
                    version=version,
                    key=r.key,
                    file=r.file,
                    fmt=r.fmt,
                    sha256=shas.get(r.file, ""),
                    split=r.split,
                    annotations=annotations[r.key],
                    spacing_row_mm=r.spacing_mm[0] if r.spacing_mm else None,
                    spacing_col_mm=r.spacing_mm[1] if r.spacing_mm else None,
                )
                for r in manifest.images
            ],
            batch_size=2000,
        )
    dataset_version_manifest(version=version)
    return version


def dataset_register_folder(
    *,
    path: str,
    name: str,
    user: Any = None,
    layout: str = "",
    spacing: str = "",
    notes: str = "",
) -> DatasetVersion:
    """A new version from a folder under one of ``MAHTQA_DATASET_ROOTS``."""
    spacing_mm = parse_spacing(spacing)
    try:
        root = resolve_under_roots(path, roots=settings.MAHTQA_DATASET_ROOTS)
    except UnsafeInput as exc:
        raise InvalidInput(exc.code, exc.message, details={"field": "path"}) from None
    manifest = _read(root, layout, spacing_mm)
    label = _label(root)
    if manifest.layout == "dicom":
        root = _dicom_import(manifest, root)
    return _store(
        manifest=manifest,
        root=root,
        label=label,
        name=name,
        kind=SourceKind.FOLDER,
        user=user,
        spacing=spacing_mm,
        notes=notes,
    )


def _label(root: Path) -> str:
    for base in settings.MAHTQA_DATASET_ROOTS:
        try:
            return f"{Path(base).name}/{root.relative_to(Path(base).resolve()).as_posix()}".rstrip(
                "/."
            )
        except ValueError:
            continue
    return root.name


def dataset_register_zip(
    *,
    upload: BinaryIO,
    name: str,
    user: Any = None,
    layout: str = "",
    spacing: str = "",
    notes: str = "",
    filename: str = "upload.zip",
) -> DatasetVersion:
    """A new version from an uploaded zip, extracted all-or-nothing into the store."""
    spacing_mm = parse_spacing(spacing)
    _dataset_name_ok(name)
    limits = ZipLimits(
        max_archive_bytes=settings.MAHTQA_DATASET_ZIP_MAX_BYTES,
        max_entries=settings.MAHTQA_DATASET_ZIP_MAX_ENTRIES,
        max_total_uncompressed=settings.MAHTQA_DATASET_ZIP_MAX_UNCOMPRESSED,
    )
    dest = settings.MAHTQA_DATASET_STORE / "uploads" / uuid.uuid4().hex
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        extract_zip_safely(upload, dest=dest, limits=limits)
    except UnsafeInput as exc:
        error = PayloadTooLarge if exc.code in _TOO_LARGE else InvalidInput
        raise error(exc.code, exc.message, details={"field": "file"}) from None
    root = _single_top_folder(dest)
    try:
        manifest = _read(root, layout, spacing_mm)
        if manifest.layout == "dicom":
            stored = _dicom_import(manifest, root)
            shutil.rmtree(dest, ignore_errors=True)
            root = dest = stored
        return _store(
            manifest=manifest,
            root=root,
            label=f"upload/{filename[:200]}",
            name=name,
            kind=SourceKind.UPLOAD,
            user=user,
            spacing=spacing_mm,
            notes=notes,
        )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)  # nothing half-stored
        raise


def _dataset_name_ok(name: str) -> None:
    if not (name or "").strip() or len(name.strip()) > 120:
        raise InvalidInput(
            "invalid_name",
            "A dataset name of 1-120 characters is required.",
            details={"field": "name"},
        )


def _single_top_folder(dest: Path) -> Path:
    """A zip of one folder (the usual 'compress folder') is read from inside it."""
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest


def dataset_version_manifest(*, version: DatasetVersion) -> Path:
    """Write (again) the version's manifest where the engine scripts find it by id
    (``--data version:ID``): ``$MAHTQA_DATASET_STORE/manifests/ID.json``."""
    root = Path(version.root_path)
    cases = [
        {
            "case_id": i.key,
            "image": str(root / i.file),
            "split": i.split,
            "spacing_mm": list(i.spacing) if i.spacing else None,
            "annotators": i.annotations,
        }
        for i in version.images.all().iterator(chunk_size=2000)
    ]
    info = {"id": version.pk, "label": version.label, "content_hash": version.content_hash}
    doc = {"dataset_version": info, "cases": cases}
    path = settings.MAHTQA_DATASET_STORE / "manifests" / f"{version.pk}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return path
