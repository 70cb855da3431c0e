"""Issues with their fingerprint and occurrences, steps, events, settings, notifications."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import factory
from django.db.models import F
from django.utils import timezone

from apps.issues.choices import Category, EventKind, NotificationKind, Severity, Source, Status
from apps.issues.models import (
    DEFAULT_DUE_MINUTES,
    Fingerprint,
    Issue,
    IssueEvent,
    IssueSettings,
    Notification,
    NotifyThrottle,
    Occurrence,
    ReproductionStep,
)


class IssueSettingsFactory(factory.django.DjangoModelFactory):
    """The single settings row (pk 1), get-or-create."""

    class Meta:
        model = IssueSettings
        django_get_or_create = ("id",)

    id = 1


class IssueFactory(factory.django.DjangoModelFactory):
    """An open issue as ``issue_report`` leaves it: its ``Fingerprint`` row and
    ``occurrences`` occurrences (default 1, ``occurrences__message=...`` passes fields on;
    ``occurrence_count`` follows). ``fingerprint_row=None``: no Fingerprint row."""

    class Meta:
        model = Issue
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Issue {n}")
    category = Category.DATA
    severity = Severity.HIGH
    status = Status.OPEN
    source = Source.WEB
    reporter = None
    fingerprint = factory.Sequence(lambda n: hashlib.sha256(f"issue-{n}".encode()).hexdigest()[:40])
    created_at = factory.LazyFunction(timezone.now)
    first_seen_at = factory.SelfAttribute("created_at")
    last_seen_at = factory.SelfAttribute("created_at")
    sla_started_at = factory.SelfAttribute("created_at")
    due_at = factory.LazyAttribute(
        lambda o: o.created_at + timedelta(minutes=DEFAULT_DUE_MINUTES[o.severity])
    )
    fingerprint_row = factory.RelatedFactory(
        "tests.factories.issues.FingerprintFactory",
        factory_related_name="issue",
        value=factory.SelfAttribute("..fingerprint"),
    )

    @factory.post_generation
    def occurrences(self, create, extracted, **kwargs):
        if not create:
            return
        count = 1 if extracted is None else int(extracted)
        for _ in range(count):
            OccurrenceFactory(**{"issue": self, "reporter": self.reporter, **kwargs})


class FingerprintFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fingerprint

    value = factory.Sequence(lambda n: hashlib.sha256(f"fp-{n}".encode()).hexdigest()[:40])
    issue = factory.SubFactory(IssueFactory, fingerprint_row=None)


class OccurrenceFactory(factory.django.DjangoModelFactory):
    """One more occurrence (on its own: of a new issue that has no other one)."""

    class Meta:
        model = Occurrence
        skip_postgeneration_save = True

    issue = factory.SubFactory(IssueFactory, occurrences=0)
    fingerprint = factory.SelfAttribute("issue.fingerprint")
    occurred_at = factory.LazyFunction(timezone.now)
    source = Source.API
    reporter = None
    message = factory.LazyAttribute(lambda o: o.issue.title)
    host = "worker-1"

    @factory.post_generation
    def counted(self, create, extracted, **kwargs):
        """The issue's ``occurrence_count`` counts this one (``counted=False``: it does not)."""
        if create and extracted is not False:
            Issue.objects.filter(pk=self.issue_id).update(
                occurrence_count=F("occurrence_count") + 1
            )
            self.issue.refresh_from_db(fields=["occurrence_count"])


class ReproductionStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReproductionStep

    issue = factory.SubFactory(IssueFactory)
    position = factory.Sequence(lambda n: n + 1)
    text = factory.Sequence(lambda n: f"Step {n + 1}")


class IssueEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IssueEvent

    issue = factory.SubFactory(IssueFactory)
    kind = EventKind.COMMENT
    actor = None
    text = "Looking into it."
    created_at = factory.LazyFunction(timezone.now)


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    kind = NotificationKind.NEW_CRITICAL
    issue = factory.SubFactory(IssueFactory, severity=Severity.CRITICAL)
    key = factory.LazyAttribute(lambda o: f"{o.kind}:{o.issue.pk if o.issue else 'all'}")
    subject = factory.LazyAttribute(lambda o: f"New critical issue: {o.issue}")
    body = "See the issue board."
    recipients = factory.LazyFunction(lambda: ["eng@example.test"])


class NotifyThrottleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NotifyThrottle

    key = factory.Sequence(lambda n: f"new_critical:{n}")
    last_sent_at = factory.LazyFunction(timezone.now)
