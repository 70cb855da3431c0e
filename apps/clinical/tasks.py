"""Celery tasks: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from apps.clinical import services
from apps.outbox.worker import worker_key

logger = logging.getLogger(__name__)

# Transient: the database or the file store blinked. Anything else is a bug or a bad
# input and must not be retried blindly (the service marks such studies failed).
TRANSIENT = (OperationalError, InterfaceError, OSError)


def _on_failure(self, exc, task_id, args, kwargs, einfo):  # noqa: ARG001
    study_id = args[0] if args else kwargs.get("study_id")
    if study_id is not None:
        if isinstance(exc, SoftTimeLimitExceeded):
            code = "timeout"
        elif isinstance(exc, TRANSIENT):
            code = "transient_error"
        else:
            code = "internal_error"
        try:
            services.study_fail(
                study_id=study_id, code=code, message=f"{exc.__class__.__name__} during inference."
            )
        except DatabaseError:
            logger.exception("could not mark study id=%s failed", study_id)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
    soft_time_limit=getattr(settings, "MAHTQA_INFER_SOFT_LIMIT_S", 120),
    time_limit=getattr(settings, "MAHTQA_INFER_HARD_LIMIT_S", 180),
    on_failure=_on_failure,
)
def study_infer_task(self, study_id: int) -> str:  # noqa: ARG001
    return services.study_infer(study_id=study_id, worker=worker_key())


@shared_task(acks_late=True)
def study_requeue_stuck_task(lease_seconds: int | None = None) -> int:
    return services.study_requeue_stuck(lease_seconds=lease_seconds)


@shared_task(acks_late=True)
def review_task_escalate_overdue_task() -> int:
    from apps.clinical.services.escalation import review_task_escalate_overdue

    return review_task_escalate_overdue()


@shared_task(acks_late=True)
def review_task_release_idle_task() -> int:
    from apps.clinical.services.review import review_task_release_idle

    return review_task_release_idle()


@shared_task(acks_late=True, autoretry_for=TRANSIENT, retry_backoff=5, max_retries=5)
def review_task_notify_task(task_id: int) -> int:
    from apps.clinical.services.escalation import review_task_notify

    return review_task_notify(task_id=task_id)


@shared_task(acks_late=True)
def storage_orphans_sweep_task() -> int:
    from apps.clinical.services.intake import storage_orphans_sweep

    return storage_orphans_sweep()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
)
def study_infer_shadow_task(study_id: int, model_version_id: int) -> str:
    """Shadow mode (queue inference by its name): the candidate on one study."""
    from apps.clinical.services.shadow import study_infer_shadow

    return study_infer_shadow(study_id=study_id, model_version_id=model_version_id)
