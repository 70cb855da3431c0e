"""Receiving a DICOM instance: validate, de-identify, store, enqueue — or refuse whole."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from concurrent.futures import Future
from datetime import timedelta

from django.conf import settings
from django.core.files.storage import Storage, default_storage, storages
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from apps.clinical.choices import SpacingSource
from apps.clinical.models import Study
from apps.clinical.services.phi_index import phi_index_add
from apps.clinical.services.policy import routing_policy_modalities
from apps.clinical.services.sites import site_for
from apps.core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from apps.core.pools import process_pool
from apps.core.storage import storage_write_parts
from apps.outbox.services import outbox_enqueue
from mahtqa.imaging.deid import deidentify_parts, patient_pseudonym, pseudonymize_uid
from mahtqa.imaging.dicom import DicomLimits, parse_header_and_validate
from mahtqa.imaging.errors import ImagingError
from mahtqa.imaging.identity import identity_of_dataset
from mahtqa.imaging.site import site_fields

logger = logging.getLogger(__name__)

INFER_TASK = "apps.clinical.tasks.study_infer_task"

# imaging error code -> domain error (everything else is invalid input)
_ERRORS = {"image_too_large": PayloadTooLarge, "unsupported_transfer_syntax": UnsupportedMediaType}


def dicom_limits() -> DicomLimits:
    """Size bounds from settings (decompression bombs); modalities from the admin policy."""
    return DicomLimits(
        max_rows=getattr(settings, "DICOM_MAX_ROWS", 8192),
        max_cols=getattr(settings, "DICOM_MAX_COLS", 8192),
        allowed_modalities=routing_policy_modalities(),
    )


def _pseudonym_key() -> bytes:
    return settings.PHI_PSEUDONYM_KEY.encode()


def study_receive(
    *, user, data: bytes | memoryview, sha256: str | None = None
) -> tuple[Study, bool]:
    """Validate one Part-10 instance and queue it. Returns (study, created).

    The same SOP Instance UID from the same client returns the existing study.
    On any refusal nothing is stored. The door checks what the door must check
    (Part-10 structure, header, modality, size limits, a supported transfer syntax,
    de-identification); pixels are decoded once, in the worker, and an instance
    that cannot be decoded ends ``failed`` with its imaging error code. ``sha256``: the
    digest of ``data`` when the caller took it while reading the body.
    """
    started = time.perf_counter()
    if len(data) > settings.DICOM_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            "payload_too_large",
            f"The file is larger than {settings.DICOM_MAX_UPLOAD_BYTES} bytes.",
        )
    try:
        ds, header, pixels = parse_header_and_validate(data, limits=dicom_limits())
    except ImagingError as exc:
        raise _ERRORS.get(exc.code, InvalidInput)(exc.code, exc.message) from None
    key = _pseudonym_key()
    deid = deidentify_parts(ds, key=key, raw=data, pixels=pixels)  # parsed once, above
    identity = identity_of_dataset(ds)
    site = site_for(fields=site_fields(ds))
    name = f"{timezone.now():%Y/%m/%d}/{uuid.uuid4().hex}.dcm"
    phi_storage = storages["phi"]
    raw = memoryview(data)
    if deid.pixels is None:  # the writer re-encoded the pixels: keep the whole original
        original_parts, deid_parts = [raw], [deid.header]
    else:  # the pixel data element is stored once, in the de-identified copy
        begin, end = deid.pixels
        original_parts, deid_parts = [raw[:begin], raw[end:]], [deid.header, raw[begin:end]]
    # Both files go to the device while the rows are inserted; the commit waits for them.
    writes = _files_write(
        (phi_storage, name, original_parts), (default_storage, f"deid/{name}", deid_parts)
    )
    spacing = header.spacing_mm
    try:
        with transaction.atomic():
            study = Study.objects.create(
                submitted_by=user,
                site=site,
                sop_instance_uid=header.sop_instance_uid,
                study_instance_uid=header.study_instance_uid,
                deid_sop_instance_uid=pseudonymize_uid(header.sop_instance_uid, key=key),
                deid_study_instance_uid=pseudonymize_uid(header.study_instance_uid, key=key),
                patient_pseudonym=patient_pseudonym(
                    header.patient_id, header.study_instance_uid, key=key
                ),
                original_file=name,
                deid_file=f"deid/{name}",
                original_pixels_at=deid.pixels[0] if deid.pixels else None,
                deid_pixels_at=len(deid.header) if deid.pixels else None,
                pixels_length=deid.pixels[1] - deid.pixels[0] if deid.pixels else None,
                file_sha256=sha256 or hashlib.sha256(data).hexdigest(),
                file_size=len(data),
                modality=header.modality,
                rows=header.rows,
                cols=header.cols,
                transfer_syntax_uid=header.transfer_syntax_uid,
                spacing_row_mm=spacing[0] if spacing else None,
                spacing_col_mm=spacing[1] if spacing else None,
                spacing_source=header.spacing_source or SpacingSource.UNKNOWN,
                enqueued_at=timezone.now(),
                receive_ms=(time.perf_counter() - started) * 1000,
            )
            phi_index_add(identity=identity)
            study_enqueue(study_id=study.pk, new=True)  # the row is new: no live message
            original_name, deid_name = (w.result() for _, w in writes)  # failed: raises
            if (original_name, deid_name) != (study.original_file, study.deid_file):
                study.original_file, study.deid_file = original_name, deid_name  # renamed
                study.save(update_fields=["original_file", "deid_file"])
    except IntegrityError:
        # Sent before (or twice at once): keep the first, drop our files. Not looked
        # up before the work: a repeat is rare, a look-up per study is not free.
        _files_drop(writes)
        study = Study.objects.filter(
            submitted_by=user, sop_instance_uid=header.sop_instance_uid
        ).first()
        if study is None:  # another constraint: not a repeat
            raise
        return study, False
    except BaseException:
        _discard_unless_committed(writes)
        raise
    logger.info("study %s received (%d bytes, %s)", study.public_id, len(data), header.modality)
    return study, True


def _files_write(*files: tuple[Storage, str, list]) -> list[tuple[Storage, Future]]:
    """Start writing each (storage, name, parts) on this process's two file writers;
    each future gives the stored name."""
    _writer = process_pool(name="intake-write", workers=2)
    return [
        (storage, _writer.submit(storage_write_parts, storage=storage, name=name, parts=parts))
        for storage, name, parts in files
    ]


def _files_drop(writes: list[tuple[Storage, Future]]) -> None:
    """Wait for the writes, then delete every file that was written (a failed write
    left none)."""
    for storage, write in writes:
        if write.exception() is None:
            try:
                storage.delete(write.result())
            except OSError as exc:  # the original error matters more; the sweep retries
                logger.warning("intake: could not delete a stored file (%s)", exc.strerror)


def _discard_unless_committed(writes: list[tuple[Storage, Future]]) -> None:
    """After a failure around the commit (the database went away), delete the files
    only when no study refers to them. When that cannot be known (the database is
    still away) they are kept: a committed study never loses its files, and the
    orphan sweep removes files that no study refers to."""
    if any(write.exception() is not None for _, write in writes):
        _files_drop(writes)  # not committed: the commit waits for both writes
        return
    original_name = writes[0][1].result()
    try:
        connection.close()  # the failed connection; the check opens a new one
        committed = Study.objects.filter(original_file=original_name).exists()
    except DatabaseError:
        logger.warning("intake: commit state unknown; files kept for the orphan sweep")
        return
    if not committed:
        _files_drop(writes)


def storage_orphans_sweep(*, days: int = 2, older_than_s: int = 3600) -> int:
    """Delete stored originals and de-identified copies that no study refers to
    (left by a failure around a commit), in the last ``days`` date folders, once
    older than ``older_than_s``. Returns the number of files deleted."""
    now = timezone.now()
    deleted = 0
    for back in range(days):
        folder = f"{now - timedelta(days=back):%Y/%m/%d}"
        for storage, prefix, field in (
            (storages["phi"], "", "original_file"),
            (default_storage, "deid/", "deid_file"),
        ):
            path = f"{prefix}{folder}"
            if not storage.exists(path):
                continue
            names = [f"{path}/{n}" for n in storage.listdir(path)[1]]
            known = set(
                Study.objects.filter(**{f"{field}__in": names}).values_list(field, flat=True)
            )
            for name in names:
                age = (now - storage.get_modified_time(name)).total_seconds()
                if name not in known and age > older_than_s:
                    storage.delete(name)
                    deleted += 1
    if deleted:
        logger.warning("orphan sweep deleted %d files", deleted)
    return deleted


def study_enqueue(*, study_id: int, new: bool = False) -> None:
    """Ask for inference, in the caller's transaction (the outbox: commits with the row).

    One live request per study: enqueueing twice before a worker picks it up is one
    message. Published by the dispatcher in the workers, never by the web request."""
    outbox_enqueue(
        task=INFER_TASK,
        kwargs={"study_id": study_id},
        dedupe_key=f"study-infer:{study_id}",
        new_key=new,
    )
