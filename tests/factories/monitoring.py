"""Monitoring: heartbeats, readiness runs, worker environments, health runs, incidents."""

from __future__ import annotations

import factory
from django.utils import timezone

from apps.monitoring.choices import IncidentEventKind, IncidentSeverity, Rag, Trigger
from apps.monitoring.models import (
    HealthResult,
    HealthRun,
    Heartbeat,
    Incident,
    IncidentEvent,
    IncidentNotification,
    MonitorSettings,
    ReadinessCheck,
    WorkerEnvironment,
)


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


class WorkerEnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkerEnvironment

    hostname = factory.Sequence(lambda n: f"worker-{n}")
    queue = "default"
    reported_at = factory.LazyFunction(timezone.now)
    status = Rag.GREEN
    facts = factory.LazyFunction(lambda: {"python": "3.11.7", "torch": "2.13.0+cpu"})
    checks = factory.LazyFunction(
        lambda: [{"code": "python", "status": "green", "message": "Python 3.11.7", "fix": ""}]
    )


class HealthRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthRun

    ran_at = factory.LazyFunction(timezone.now)
    status = Rag.GREEN


class HealthResultFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthResult

    run = factory.SubFactory(HealthRunFactory)
    code = "queue_depth"
    status = Rag.GREEN
    message = "0 studies waiting."


class MonitorSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MonitorSettings
        django_get_or_create = ("id",)

    id = 1


class IncidentFactory(factory.django.DjangoModelFactory):
    """An active incident (each with its own fingerprint, so they never fold)."""

    class Meta:
        model = Incident

    trigger = Trigger.SYSTEM_DOWN
    fingerprint = factory.Sequence(lambda n: f"system_down:factory-{n}")
    severity = IncidentSeverity.SEV1
    title = factory.Sequence(lambda n: f"Broker unreachable ({n})")
    opened_at = factory.LazyFunction(timezone.now)
    last_seen_at = factory.LazyAttribute(lambda o: o.opened_at)


class IncidentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IncidentEvent

    incident = factory.SubFactory(IncidentFactory)
    at = factory.LazyFunction(timezone.now)
    kind = IncidentEventKind.NOTE
    actor = "adm"
    message = "Looking at it."


class IncidentNotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IncidentNotification

    incident = factory.SubFactory(IncidentFactory)
    step = 0
    level = "radiologist"
    created_at = factory.LazyFunction(timezone.now)
