"""The keyed-hash index of every identifier the system holds (digests only)."""

from __future__ import annotations

from django.core.files.storage import storages

from apps.clinical.models import PhiDigest, Study
from apps.clinical.selectors import phi_index_key
from mahtqa.imaging.identity import PatientIdentity, identity_read
from mahtqa.phi import digest, identifier_tokens


def phi_index_add(*, identity: PatientIdentity) -> int:
    """Index one instance's identifiers. Returns the number of digests offered."""
    tokens = identifier_tokens(
        names=identity.names, ids=identity.ids, dates=identity.dates, uids=identity.uids
    )
    key = phi_index_key()
    rows = [PhiDigest(digest=digest(t, key=key)) for t in tokens]
    PhiDigest.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return len(rows)


def phi_index_rebuild(*, batch: int = 200) -> tuple[int, int]:
    """Re-index every stored original (after a key change or for studies received
    before the index existed). Returns ``(studies, digests offered)``."""
    phi_storage = storages["phi"]
    studies = digests = 0
    names = Study.objects.order_by("pk").values_list("original_file", flat=True)
    for name in names.iterator(chunk_size=batch):
        if not name or not phi_storage.exists(name):
            continue
        with phi_storage.open(name, "rb") as fh:
            identity = identity_read(fh)  # header only, not the pixels
        digests += phi_index_add(identity=identity)
        studies += 1
    return studies, digests
