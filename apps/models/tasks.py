"""Celery tasks: thin, take ids, call one service, safe to run twice."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

TRANSIENT = (OperationalError, InterfaceError, OSError)


@shared_task(
    name="apps.models.tasks.inference_evaluate_task",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=3000,
    time_limit=3600,
)
def inference_evaluate_task(evaluation_id: int) -> str:
    """Queue inference (by its name): one evaluation run."""
    from apps.models.services.evaluation import evaluation_execute

    return evaluation_execute(evaluation_id=evaluation_id).status


@shared_task(
    name="apps.models.tasks.run_diagnose_task",
    acks_late=True,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
)
def run_diagnose_task(run_id: int) -> int:
    """Queue checks: the ConvergenceAnalyzer over a run's history (throttled by the service)."""
    from apps.models.services.runs import run_diagnose

    return run_diagnose(run_id=run_id).findings.count()
