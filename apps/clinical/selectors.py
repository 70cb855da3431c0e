"""Clinical reads, with the visibility rules of ARCHITECTURE.md in one place.

- API clients see only the studies they submitted (with their own identifiers).
- Clinical roles (view_phi) see every study, identified.
- Engineers (view_deidentified) see every study, de-identified only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage, storages
from django.db.models import Count, F, Min, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce, TruncWeek

from apps.clinical.choices import StudyStatus, TaskStatus
from apps.clinical.models import PhiDigest, Prediction, Review, ReviewTask, Study
from apps.core.navigation import user_has_perm
from mahtqa.imaging.identity import PatientCard, PatientIdentity, identity_read, patient_card_read
from mahtqa.phi import Scrubber


def study_visibility(user) -> str | None:
    """ "owner", "phi", "deidentified", or None (no access)."""
    if not user.is_authenticated:
        return None
    if user_has_perm(user, "accounts.view_phi"):
        return "phi"
    if user_has_perm(user, "accounts.submit_study"):
        return "owner"
    if user_has_perm(user, "accounts.view_deidentified"):
        return "deidentified"
    return None


def study_list(*, user, status: str | None = None) -> QuerySet[Study]:
    visibility = study_visibility(user)
    qs = Study.objects.none() if visibility is None else Study.objects.all()
    if visibility == "owner":
        qs = qs.filter(submitted_by=user)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("submitted_by").prefetch_related(
        Prefetch(
            "predictions",
            queryset=Prediction.objects.select_related("model_version").order_by("-created_at"),
        ),
        Prefetch("reviews", queryset=Review.objects.select_related("reviewer")),
    )


def study_get(*, user, public_id) -> Study | None:
    return study_list(user=user).filter(public_id=public_id).first()


def study_latest_prediction(study: Study) -> Prediction | None:
    preds = list(study.predictions.all())
    return preds[0] if preds else None


def study_latest_review(study: Study) -> Review | None:
    reviews = list(study.reviews.all())
    return reviews[0] if reviews else None


# --- PHI: published for every app that shows engineer-visible text ------------------


def phi_index_key() -> bytes:
    """The index key, derived from PHI_PSEUDONYM_KEY (a separate domain from pseudonyms)."""
    base = settings.PHI_PSEUDONYM_KEY.encode()
    if not base:
        raise ImproperlyConfigured("PHI_PSEUDONYM_KEY is not set")
    return hmac.new(base, b"mahtqa-phi-index-v1", hashlib.sha256).digest()


def phi_digests_known(*, digests: set[str]) -> set[str]:
    """Which of ``digests`` the index holds (the lookup of :class:`mahtqa.phi.Scrubber`)."""
    found: set[str] = set()
    items = list(digests)
    for i in range(0, len(items), 1000):
        found.update(
            PhiDigest.objects.filter(digest__in=items[i : i + 1000]).values_list(
                "digest", flat=True
            )
        )
    return found


def study_identity(*, study: Study | None) -> PatientIdentity:
    """The linked study's own identifiers (PHI: memory only) plus its stored UIDs."""
    if study is None:
        return PatientIdentity()
    identity = PatientIdentity()
    phi_storage = storages["phi"]
    if study.original_file and phi_storage.exists(study.original_file):
        with phi_storage.open(study.original_file, "rb") as fh:
            identity = identity_read(fh)  # header only, not the pixels
    extra = (study.sop_instance_uid, study.study_instance_uid)
    return PatientIdentity(
        names=identity.names, ids=identity.ids, dates=identity.dates,
        uids=tuple(dict.fromkeys([*identity.uids, *[u for u in extra if u]])),
        all_values=tuple(dict.fromkeys([*identity.all_values, *[u for u in extra if u]])),
    )  # fmt: skip


def study_patient_card(*, study: Study) -> PatientCard:
    """Name, ID, birth date, sex, study date and accession from the original file's
    header, for clinicians with ``view_phi`` (read per request, never cached or logged)."""
    phi_storage = storages["phi"]
    if not study.original_file or not phi_storage.exists(study.original_file):
        return PatientCard()
    with phi_storage.open(study.original_file, "rb") as fh:
        return patient_card_read(fh)


def phi_scrubber(*, study: Study | None = None, values: Iterable[str] = ()) -> Scrubber:
    """A scrubber that knows the linked study's identifiers and the whole index."""
    identity = study_identity(study=study)
    return Scrubber(
        values=[*identity.all_values, *values],
        key=phi_index_key(),
        lookup=lambda digests: phi_digests_known(digests=digests),
    )


class OriginalUnavailable(Exception):
    """The received file cannot be rebuilt: a part is missing or does not match."""


def study_original_bytes(*, study: Study) -> bytes:
    """The file exactly as it was received (PHI: memory only), checked against the
    SHA-256 taken at the door. Its pixel data element is stored once, in the
    de-identified copy; the "phi" file holds everything else."""
    phi_storage = storages["phi"]
    try:
        with phi_storage.open(study.original_file, "rb") as fh:
            rest = fh.read()
        if study.original_pixels_at is None:
            data = rest
        else:
            at = study.original_pixels_at
            with default_storage.open(study.deid_file, "rb") as fh:
                fh.seek(study.deid_pixels_at)
                pixels = fh.read(study.pixels_length)
            data = b"".join((rest[:at], pixels, rest[at:]))
    except OSError as exc:
        raise OriginalUnavailable(f"a stored part is missing ({type(exc).__name__})") from None
    if hashlib.sha256(data).hexdigest() != study.file_sha256:
        raise OriginalUnavailable("the rebuilt file does not match the SHA-256 taken at intake")
    return data


# --- Figures for monitoring: counts and rows without PHI (published to apps.monitoring) ---


def study_status_summary() -> dict[str, dict[str, Any]]:
    """Per status: ``n``, ``waiting`` (the earliest enqueued, else received, time) and
    ``started`` (the earliest start)."""
    rows = (
        Study.objects.values("status")
        .annotate(
            n=Count("id"),
            waiting=Min(Coalesce("enqueued_at", "received_at")),
            started=Min("started_at"),
        )
        .order_by()
    )
    return {row["status"]: row for row in rows}


def study_queued_summary() -> dict[str, Any]:
    """Queued studies: ``n`` and ``oldest`` (received time)."""
    return Study.objects.filter(status=StudyStatus.QUEUED).aggregate(
        n=Count("id"), oldest=Min("received_at")
    )


def prediction_inference_ms_latest(*, limit: int) -> list[Any]:
    """``timings_ms["inference"]`` of the latest ``limit`` predictions by id (raw JSON
    values: the caller decides what is a number)."""
    values = Prediction.objects.order_by("-pk").values_list("timings_ms__inference", flat=True)
    return list(values[:limit])


def prediction_ood_rows(*, since: datetime, limit: int) -> list[tuple]:
    """(created_at, ood_score, ood_details) of predictions since ``since``, newest first."""
    return list(
        Prediction.objects.filter(created_at__gte=since)
        .values_list("created_at", "ood_score", "ood_details")
        .order_by("-created_at")[:limit]
    )


def prediction_case_rows(
    *, since: datetime, until: datetime, statuses: Iterable[str], limit: int
) -> list[tuple]:
    """Predicted cases for the clinical monitor, newest first: (id, study_id, study public
    id, site key, spacing row, spacing col, model name, model version, landmarks, OOD
    score, OOD details, created_at). Identifiers are pseudonymous only."""
    return list(
        Prediction.objects.filter(
            created_at__gte=since, created_at__lte=until, study__status__in=list(statuses)
        )
        .order_by("-created_at", "-id")
        .values_list("id", "study_id", "study__public_id", "study__site__key",
                     "study__spacing_row_mm", "study__spacing_col_mm", "model_version__name",
                     "model_version__version", "landmarks", "ood_score", "ood_details",
                     "created_at")[:limit]
    )  # fmt: skip


def review_decisions_of(*, prediction_ids: Iterable[int]) -> list[tuple]:
    """(prediction_id, outcome, landmarks_after) of the reviews of these predictions,
    oldest first (so the latest decision comes last)."""
    return list(
        Review.objects.filter(prediction_id__in=list(prediction_ids))
        .order_by("created_at", "id")
        .values_list("prediction_id", "outcome", "landmarks_after")
    )


def review_decision_rows(*, since: datetime, limit: int) -> list[tuple]:
    """(outcome, landmarks_before, landmarks_after, spacing row, spacing col) of reviews
    since ``since``."""
    return list(
        Review.objects.filter(created_at__gte=since)
        .values_list("outcome", "landmarks_before", "landmarks_after",
                     "study__spacing_row_mm", "study__spacing_col_mm")[:limit]
    )  # fmt: skip


def review_task_backlog_cells(*, now: datetime) -> list[dict[str, Any]]:
    """Undecided review tasks per (level, priority, status): ``n``, ``overdue`` and
    ``oldest`` (created time)."""
    return list(
        ReviewTask.objects.filter(status__in=[TaskStatus.OPEN, TaskStatus.CLAIMED])
        .values("level", "priority", "status")
        .annotate(
            n=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)), oldest=Min("created_at")
        )
        .order_by()
    )


def review_task_live_summary(*, now: datetime) -> dict[str, Any]:
    """Review tasks not done: ``n``, ``overdue`` and ``oldest`` (the earliest due time
    already past)."""
    return ReviewTask.objects.exclude(status=TaskStatus.DONE).aggregate(
        n=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)),
        oldest=Min("due_at", filter=Q(due_at__lt=now)),
    )  # fmt: skip


def review_task_sla_counts(*, since: datetime, now: datetime) -> dict[str, Any]:
    """Review tasks closed since ``since``, closed (``n``) and closed by their due time
    (``ok``): per priority and per week; and the open tasks already overdue."""
    done = ReviewTask.objects.filter(
        status=TaskStatus.DONE, closed_at__isnull=False, closed_at__gte=since
    )
    on_time = Q(closed_at__lte=F("due_at"))
    return {
        "by_priority": list(
            done.values("priority").annotate(n=Count("id"), ok=Count("id", filter=on_time))
        ),
        "weekly": list(
            done.annotate(week=TruncWeek("closed_at"))
            .values("week")
            .annotate(n=Count("id"), ok=Count("id", filter=on_time))
            .order_by("week")
        ),
        "overdue_open": ReviewTask.objects.exclude(status=TaskStatus.DONE)
        .filter(due_at__lt=now)
        .count(),
    }
