"""Receivers: failed Celery tasks and failed checks of other apps file issues.

Other apps report a failed check with::

    from apps.issues.signals import check_failed
    check_failed.send(sender=__name__, app="datasets", check="integrity", error="sha_mismatch")

(``severity`` and ``category`` are optional keyword arguments).
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_failure
from django.dispatch import Signal, receiver

from mahtqa.reporting import exception_trace

logger = logging.getLogger(__name__)

check_failed = Signal()  # kwargs: app, check, error, [severity, category, details]

# Never report our own tasks' failures through the same path (no loops).
_SKIP_PREFIX = "apps.issues."


@task_failure.connect(dispatch_uid="issues.task_failure")
def on_task_failure(
    sender: Any = None, task_id: str = "", exception: BaseException | None = None, **kwargs: Any
) -> None:
    name = getattr(sender, "name", "") or str(sender)
    if exception is None or name.startswith(_SKIP_PREFIX):
        return
    try:
        from apps.issues.services import issue_report_task_failure

        issue_report_task_failure(
            task_name=name, exception=exception, traces=exception_trace(exception),
            task_id=str(task_id or ""),
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - reporting must never mask the task's failure
        logger.warning("could not file an issue for task %s: %s", name, type(exc).__name__)


@receiver(check_failed, dispatch_uid="issues.check_failed")
def on_check_failed(sender: Any = None, **kwargs: Any) -> None:
    try:
        from apps.issues.services import issue_report_check_failure

        issue_report_check_failure(
            app=str(kwargs.get("app", sender)), check=str(kwargs["check"]),
            error=str(kwargs.get("error", "failed")),
            **{k: kwargs[k] for k in ("severity", "category", "details") if k in kwargs},
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001
        logger.warning("could not file an issue for a failed check: %s", type(exc).__name__)
