"""Writing and publishing outbox messages.

    with transaction.atomic():
        study = Study.objects.create(...)
        outbox_enqueue(task="apps.clinical.tasks.study_infer_task",
                       kwargs={"study_id": study.pk}, dedupe_key=f"infer:{study.pk}")

The row commits or rolls back with the study. Publishing is the dispatcher's
job (``outbox_dispatch``, run in a loop by every worker, see
``apps.outbox.worker``), never the web request's: a broker that is down makes
the dispatcher back off and try again; nothing is lost and the client is not
kept waiting.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.outbox.choices import LIVE_STATUSES, OutboxStatus
from apps.outbox.models import OutboxMessage

logger = logging.getLogger(__name__)

TASK_ID_RE = re.compile(r"^outbox-(\d+)-(\d+)$")


def outbox_enqueue(
    *, task: str, kwargs: dict[str, Any] | None = None, dedupe_key: str = "",
    delay_s: float = 0.0, now: datetime | None = None, new_key: bool = False,
) -> OutboxMessage:  # fmt: skip
    """Record that ``task(**kwargs)`` must run once the current transaction commits.

    With ``dedupe_key``, at most one live (pending or published, not yet picked
    up) message exists per key: a second enqueue returns the live one. ``new_key``:
    the caller knows no message can exist for the key yet (a row created in this
    transaction), so the look-up is skipped (the unique constraint still holds).
    """
    now = now or timezone.now()
    fields = {"task": task, "kwargs": dict(kwargs or {}), "dedupe_key": dedupe_key,
              "available_at": now + timedelta(seconds=delay_s)}  # fmt: skip
    if not dedupe_key or new_key:
        return OutboxMessage.objects.create(**fields)
    live = OutboxMessage.objects.filter(dedupe_key=dedupe_key, status__in=LIVE_STATUSES)
    existing = live.first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return OutboxMessage.objects.create(**fields)
    except IntegrityError:  # the same key enqueued concurrently
        return live.get()


@dataclass(frozen=True)
class DispatchResult:
    published: int = 0
    republished: int = 0
    failed: int = 0
    dead: int = 0


def _backoff_s(failures: int) -> float:
    return min(settings.MAHTQA_OUTBOX_BACKOFF_MAX_S, 0.5 * 2 ** max(0, failures - 1))


def _redeliver_after_s(publish_count: int) -> float:
    base = settings.MAHTQA_OUTBOX_REDELIVER_S
    return min(base * 2 ** max(0, publish_count - 1), 20 * base)


def _publish(message: OutboxMessage, app: Any) -> None:
    app.send_task(
        message.task, kwargs=message.kwargs,
        task_id=f"outbox-{message.pk}-{message.publish_count + 1}",
        retry=False,  # a broker that is down fails fast: the row backs off and stays
    )  # fmt: skip


def outbox_dispatch(
    *, limit: int = 200, now: datetime | None = None, app: Any = None
) -> DispatchResult:
    """Publish due messages (new ones, failed ones after their back-off, and
    published ones no worker picked up in time). Safe to run in many processes
    at once: rows are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``.
    ``app``: the Celery app to publish with (default: the project's)."""
    if app is None:
        from mahtqa.celery import app
    now = now or timezone.now()
    published = republished = failed = dead = 0
    max_publishes = settings.MAHTQA_OUTBOX_MAX_PUBLISHES
    with transaction.atomic():
        due = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status__in=LIVE_STATUSES, available_at__lte=now)
            .order_by("available_at", "id")[:limit]
        )
        for message in due:
            if message.publish_count >= max_publishes:
                message.status = OutboxStatus.DEAD
                message.last_error = f"not picked up after {message.publish_count} publishes"
                message.save(update_fields=["status", "last_error"])
                logger.error("outbox message %s dead: %s", message.pk, message.last_error)
                dead += 1
                continue
            try:
                _publish(message, app)
            except Exception as exc:  # noqa: BLE001 - any broker failure: back off, keep the row
                message.failures += 1
                failed_at = max(now, timezone.now())  # a dead broker can take seconds
                message.available_at = failed_at + timedelta(seconds=_backoff_s(message.failures))
                message.last_error = f"{type(exc).__name__}: {exc}"[:300]
                message.save(update_fields=["failures", "available_at", "last_error"])
                failed += 1
                logger.warning("outbox: broker unavailable (%s); retrying", type(exc).__name__)
                break  # the broker is down: the rest waits for the next round
            if message.status == OutboxStatus.SENT:
                republished += 1
            else:
                published += 1
            message.publish_count += 1
            message.failures = 0
            message.status = OutboxStatus.SENT
            message.published_at = now
            message.available_at = now + timedelta(
                seconds=_redeliver_after_s(message.publish_count)
            )
            message.last_error = ""
            message.save(update_fields=["publish_count", "failures", "status", "published_at",
                                        "available_at", "last_error"])  # fmt: skip
    return DispatchResult(published=published, republished=republished, failed=failed, dead=dead)


def outbox_mark_consumed(*, task_id: str, now: datetime | None = None) -> bool:
    """A worker started the task published as ``task_id``: no more re-publishing."""
    match = TASK_ID_RE.match(task_id or "")
    if match is None:
        return False
    updated = OutboxMessage.objects.filter(pk=int(match.group(1)), status__in=LIVE_STATUSES).update(
        status=OutboxStatus.DONE, consumed_at=now or timezone.now()
    )
    return bool(updated)


def outbox_purge(*, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete messages picked up longer ago than ``older_than`` (housekeeping)."""
    cutoff = (now or timezone.now()) - older_than
    deleted, _ = OutboxMessage.objects.filter(
        status=OutboxStatus.DONE, consumed_at__lt=cutoff
    ).delete()
    return deleted
