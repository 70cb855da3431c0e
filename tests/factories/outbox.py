"""Factories for apps.outbox."""

from __future__ import annotations

import factory
from django.utils import timezone

from apps.outbox.choices import OutboxStatus
from apps.outbox.models import OutboxMessage


class OutboxMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OutboxMessage

    task = "apps.clinical.tasks.study_infer_task"
    kwargs = factory.Sequence(lambda n: {"study_id": n})
    status = OutboxStatus.PENDING
    available_at = factory.LazyFunction(timezone.now)
