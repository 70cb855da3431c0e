"""The outbox: rows commit with the work, the dispatcher publishes, nothing is lost."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.outbox.choices import OutboxStatus
from apps.outbox.models import OutboxMessage
from apps.outbox.selectors import outbox_backlog
from apps.outbox.services import outbox_dispatch, outbox_enqueue, outbox_mark_consumed

pytestmark = pytest.mark.django_db(transaction=True)

INFER = "apps.clinical.tasks.study_infer_task"
NOTIFY = "apps.issues.tasks.notification_deliver_task"


def _queued(server, queue: str) -> int:
    return server.client().llen(queue)


def _enqueue_then_fail() -> None:
    with transaction.atomic():
        outbox_enqueue(task=INFER, kwargs={"study_id": 1})
        raise RuntimeError("the study was not stored")


def test_a_rolled_back_transaction_leaves_no_message():
    with pytest.raises(RuntimeError):
        _enqueue_then_fail()
    assert OutboxMessage.objects.count() == 0


def test_one_live_message_per_dedupe_key():
    first = outbox_enqueue(task=INFER, kwargs={"study_id": 7}, dedupe_key="study-infer:7")
    again = outbox_enqueue(task=INFER, kwargs={"study_id": 7}, dedupe_key="study-infer:7")
    assert again.pk == first.pk
    assert outbox_mark_consumed(task_id=f"outbox-{first.pk}-1")
    third = outbox_enqueue(task=INFER, kwargs={"study_id": 7}, dedupe_key="study-infer:7")
    assert third.pk != first.pk  # picked up: new work may be asked for again
    assert OutboxMessage.objects.count() == 2


def test_dispatch_publishes_to_the_routed_queue(private_redis, producer):
    message = outbox_enqueue(task=INFER, kwargs={"study_id": 3})
    outbox_enqueue(task=NOTIFY, kwargs={"notification_id": 9})
    result = outbox_dispatch(app=producer)
    assert (result.published, result.failed) == (2, 0)
    assert _queued(private_redis, "inference") == 1
    assert _queued(private_redis, "default") == 1
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT
    assert message.publish_count == 1
    assert outbox_dispatch(app=producer).published == 0  # nothing due: no duplicate


def test_broker_down_backs_off_and_loses_nothing(private_redis, producer):
    private_redis.kill()
    message = outbox_enqueue(task=INFER, kwargs={"study_id": 4})
    result = outbox_dispatch(app=producer)
    assert (result.published, result.failed) == (0, 1)
    message.refresh_from_db()
    assert message.status == OutboxStatus.PENDING
    assert message.failures == 1
    assert message.available_at > timezone.now()
    assert message.last_error
    private_redis.start()
    later = timezone.now() + timedelta(seconds=10)
    assert outbox_dispatch(app=producer, now=later).published == 1
    assert _queued(private_redis, "inference") == 1


def test_a_message_the_broker_lost_is_published_again(private_redis, producer, settings):
    message = outbox_enqueue(task=INFER, kwargs={"study_id": 5})
    assert outbox_dispatch(app=producer).published == 1
    private_redis.kill()  # Redis without persistence: the message is gone
    private_redis.start()
    assert _queued(private_redis, "inference") == 0
    soon = timezone.now() + timedelta(seconds=settings.MAHTQA_OUTBOX_REDELIVER_S - 1)
    assert outbox_dispatch(app=producer, now=soon).republished == 0  # not yet
    later = timezone.now() + timedelta(seconds=settings.MAHTQA_OUTBOX_REDELIVER_S + 1)
    assert outbox_dispatch(app=producer, now=later).republished == 1
    assert _queued(private_redis, "inference") == 1
    message.refresh_from_db()
    assert message.publish_count == 2
    # A worker picks it up: never published again.
    assert outbox_mark_consumed(task_id=f"outbox-{message.pk}-2")
    much_later = timezone.now() + timedelta(hours=1)
    assert outbox_dispatch(app=producer, now=much_later).republished == 0


def test_given_up_after_max_publishes(private_redis, producer, settings):
    settings.MAHTQA_OUTBOX_MAX_PUBLISHES = 2
    message = outbox_enqueue(task=INFER, kwargs={"study_id": 6})
    t = timezone.now()
    for _ in range(2):
        outbox_dispatch(app=producer, now=t)
        t += timedelta(hours=1)
    result = outbox_dispatch(app=producer, now=t)
    assert result.dead == 1
    message.refresh_from_db()
    assert message.status == OutboxStatus.DEAD
    assert outbox_backlog()["dead"] == 1


def test_backlog_reports_the_oldest_waiting_message():
    outbox_enqueue(task=INFER, kwargs={"study_id": 8})
    backlog = outbox_backlog(now=timezone.now() + timedelta(seconds=30))
    assert backlog["pending"] == 1
    assert 29 <= backlog["oldest_waiting_s"] <= 31
