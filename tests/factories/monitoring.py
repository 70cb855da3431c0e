"""Worker heartbeats and recorded readiness runs."""

from __future__ import annotations

import factory
from django.utils import timezone

from apps.monitoring.models import Heartbeat, ReadinessCheck


class HeartbeatFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Heartbeat
        django_get_or_create = ("source",)

    source = factory.Sequence(lambda n: f"source-{n}")
    hostname = "worker-1"
    seen_at = factory.LazyFunction(timezone.now)


class ReadinessCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReadinessCheck

    checked_at = factory.LazyFunction(timezone.now)
    source = "beat"
    ok = True
    results = factory.LazyFunction(
        lambda: {
            name: {"status": "ok", "latency_ms": 1.0}
            for name in ("database", "broker", "storage", "model")
        }  # fmt: skip
    )
