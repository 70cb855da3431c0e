"""Model-found annotation errors: find them (from out-of-fold predictions or a
registered model), let an engineer confirm or dismiss each (audited), and derive a
corrected version of the annotation set."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.clinical.choices import AuditAction
from apps.clinical.services.audit import audit_record
from apps.core.errors import Conflict, InvalidInput
from apps.datasets.choices import SourceKind, SuspectStatus
from apps.datasets.models import DatasetFile, DatasetImage, DatasetVersion, SuspectAnnotation
from apps.datasets.services.registration import content_hash, dataset_version_manifest
from apps.datasets.services.validation import record_of
from mahtqa.cephalometry.landmarks import ABBREVIATIONS, landmark_index
from mahtqa.datasets.checks import decode_gray
from mahtqa.datasets.safe_io import UnsafeInput, resolve_entry_under_roots
from mahtqa.datasets.suspects import Annotated, find_suspects, predictions_from_oof


def _annotated(version: DatasetVersion):
    for image in version.images.all().iterator(chunk_size=1000):
        rec = record_of(image)
        yield Annotated(key=image.key, annotations=rec.annotations, spacing=rec.spacing_mm)


def predictions_from_model(*, version: DatasetVersion, model_version: Any) -> dict[str, np.ndarray]:
    """Run a registered model over every readable image of the version."""
    from apps.models.loader import predictor_for

    predictor = predictor_for(model_version)
    root = Path(version.root_path)
    out = {}
    for image in version.images.all().iterator(chunk_size=200):
        try:
            gray = decode_gray((root / image.file).read_bytes(), image.fmt)
        except OSError:
            continue
        if gray is not None:
            out[image.key] = np.asarray(
                predictor.predict(gray, spacing_mm=image.spacing).points(), float
            )
    return out


def oof_path_resolve(*, path: str) -> Path:
    """An out-of-fold file must sit under a dataset root too."""
    try:
        return resolve_entry_under_roots(path, roots=settings.MAHTQA_DATASET_ROOTS)
    except UnsafeInput as exc:
        raise InvalidInput(exc.code, exc.message, details={"field": "oof"}) from None


def suspects_find(
    *,
    version: DatasetVersion,
    predictions: dict[str, np.ndarray],
    source: str,
) -> int:
    """Store the suspects of one source (again: only new ones are added). Returns how many
    are stored for the source."""
    found = find_suspects(images=_annotated(version), predictions=predictions)
    ids = dict(version.images.values_list("key", "id"))
    rows = [
        SuspectAnnotation(
            version=version,
            image_id=ids[s.key],
            annotator=s.annotator,
            landmark=s.landmark,
            source=source[:120],
            evidence=s.evidence,
            distances={
                "self_model": s.self_model,
                "self_other": s.self_other,
                "model_other": s.model_other,
                "other": s.other,
            },
            points={"self": s.point_self, "other": s.point_other, "model": s.point_model},
        )
        for s in found
        if s.key in ids
    ]
    SuspectAnnotation.objects.bulk_create(rows, ignore_conflicts=True)
    return version.suspects.filter(source=source[:120]).count()


def suspects_find_from_oof(*, version: DatasetVersion, path: str) -> int:
    file = oof_path_resolve(path=path)
    try:
        predictions = predictions_from_oof(file)
    except ValueError as exc:
        raise InvalidInput(
            "invalid_predictions", f"{file.name}: {exc}.", details={"field": "oof"}
        ) from None
    if not set(predictions) & set(version.images.values_list("key", flat=True)):
        raise InvalidInput(
            "predictions_unmatched",
            "No case id of the file is an image of this version.",
            details={"field": "oof"},
        )
    return suspects_find(version=version, predictions=predictions, source=f"oof:{file.name}")


def suspect_decide(
    *, suspect: SuspectAnnotation, decision: str, user: Any, note: str = "", ip: str | None = None
) -> SuspectAnnotation:
    """Confirm (the annotation is wrong) or dismiss (it is right). Deciding again the
    same way changes nothing; the other way is a conflict."""
    if decision not in (SuspectStatus.CONFIRMED, SuspectStatus.DISMISSED):
        raise InvalidInput(
            "invalid_decision",
            "Decision is 'confirmed' or 'dismissed'.",
            details={"field": "decision"},
        )
    with transaction.atomic():
        locked = SuspectAnnotation.objects.select_for_update().get(pk=suspect.pk)
        if locked.status == decision:
            return locked
        if locked.status != SuspectStatus.OPEN:
            raise Conflict("already_decided", f"This suspect was already {locked.status}.")
        locked.status, locked.note = decision, (note or "")[:500]
        locked.decided_by, locked.decided_at = user, timezone.now()
        locked.save(update_fields=["status", "note", "decided_by", "decided_at"])
        audit_record(
            actor=user,
            ip=ip,
            target_type="dataset_suspect",
            target_id=str(locked.pk),
            action=AuditAction.DATASET_SUSPECT_DECIDE,
            details={
                "decision": decision,
                "version": locked.version_id,
                "landmark": locked.landmark,
                "annotator": locked.annotator,
            },
        )
    return locked


def dataset_version_correct(
    *, version: DatasetVersion, user: Any, ip: str | None = None
) -> DatasetVersion:
    """A new version whose annotations take, for each confirmed suspect, the other
    annotator's point. The files are the same (same hashes); the content hash differs."""
    confirmed = list(
        version.suspects.filter(status=SuspectStatus.CONFIRMED).select_related("image")
    )
    if not confirmed:
        raise Conflict("nothing_confirmed", "Confirm at least one suspect annotation first.")
    fixes: dict[int, dict[str, dict[int, list[float]]]] = {}
    for s in confirmed:
        fixes.setdefault(s.image_id, {}).setdefault(s.annotator, {})[landmark_index(s.landmark)] = (
            list(s.points["other"])
        )
    images = []
    for image in version.images.all().iterator(chunk_size=2000):
        anns = {a: [list(p) if p else None for p in pts] for a, pts in image.annotations.items()}
        for annotator, points in fixes.get(image.pk, {}).items():
            for i, xy in points.items():
                anns[annotator][i] = xy
        images.append((image, anns))
    files = list(version.files.values_list("path", "sha256", "size"))
    digest = content_hash(
        files=[(p, s) for p, s, _ in files], annotations={i.key: a for i, a in images}
    )
    for _ in range(3):
        try:
            with transaction.atomic():
                number = (version.dataset.versions.aggregate(n=Max("number"))["n"] or 0) + 1
                derived = DatasetVersion.objects.create(
                    dataset=version.dataset,
                    number=number,
                    layout=version.layout,
                    source_kind=SourceKind.DERIVED,
                    root_path=version.root_path,
                    root_label=version.root_label,
                    content_hash=digest,
                    schema="seven",
                    annotators=version.annotators,
                    image_count=version.image_count,
                    file_count=version.file_count,
                    total_bytes=version.total_bytes,
                    spacing_row_mm=version.spacing_row_mm,
                    spacing_col_mm=version.spacing_col_mm,
                    parent=version,
                    created_by=user,
                    notes=f"v{version.number} with {len(confirmed)} confirmed correction(s).",
                )
                DatasetFile.objects.bulk_create(
                    [DatasetFile(version=derived, path=p, sha256=s, size=z) for p, s, z in files],
                    batch_size=2000,
                )
                DatasetImage.objects.bulk_create(
                    [
                        DatasetImage(
                            version=derived,
                            key=i.key,
                            file=i.file,
                            fmt=i.fmt,
                            sha256=i.sha256,
                            split=i.split,
                            spacing_row_mm=i.spacing_row_mm,
                            spacing_col_mm=i.spacing_col_mm,
                            annotations=a,
                        )
                        for i, a in images
                    ],
                    batch_size=2000,
                )
                audit_record(
                    actor=user,
                    ip=ip,
                    action=AuditAction.DATASET_CORRECT,
                    target_type="dataset_version",
                    target_id=str(derived.pk),
                    details={"parent": version.pk, "corrections": len(confirmed)},
                )
            dataset_version_manifest(version=derived)
            return derived
        except IntegrityError:  # another version got the number first
            continue
    raise Conflict("busy", "Another version is being created; try again.")


def annotations_zip(*, version: DatasetVersion) -> bytes:
    """The annotation set in the ISBI layout (seven lines 'x,y' per file, our order),
    plus splits.csv, as a zip. Images are not included (they are unchanged)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        splits = ["image,split"]
        for image in version.images.all().iterator(chunk_size=2000):
            splits.append(f"{image.key},{image.split}")
            for annotator, pts in image.annotations.items():
                lines = [f"{p[0]:.3f},{p[1]:.3f}" if p else "nan,nan" for p in pts]
                zf.writestr(f"annotations/{annotator}/{image.key}.txt", "\n".join(lines) + "\n")
        zf.writestr("splits.csv", "\n".join(splits) + "\n")
        zf.writestr(
            "README.txt", f"{version.label}: landmarks {', '.join(ABBREVIATIONS)} (one per line).\n"
        )
    return buf.getvalue()
