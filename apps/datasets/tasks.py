"""Celery tasks (queue ``checks``): thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from apps.datasets import services

TRANSIENT = (OperationalError, InterfaceError)


def _validation_failed(self, exc, task_id, args, kwargs, einfo):  # noqa: ARG001
    run_id = args[0] if args else kwargs.get("run_id")
    if run_id is not None and not isinstance(exc, TRANSIENT):
        services.validation_run_fail(
            run_id=run_id, message=f"{type(exc).__name__} in a validation step."
        )


@shared_task(
    name="apps.datasets.tasks.validation_run_step_task",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    max_retries=5,
    on_failure=_validation_failed,
    soft_time_limit=300,
    time_limit=360,
)
def validation_run_step_task(run_id: int) -> str:
    return services.validation_run_step(run_id=run_id)


@shared_task(name="apps.datasets.tasks.validation_run_requeue_stale_task", acks_late=True)
def validation_run_requeue_stale_task() -> int:
    return services.validation_run_requeue_stale()


@shared_task(
    name="apps.datasets.tasks.profile_run_execute_task",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=2,
    max_retries=3,
    soft_time_limit=900,
    time_limit=960,
)
def profile_run_execute_task(run_id: int) -> str:
    return services.profile_run_execute(run_id=run_id).status
