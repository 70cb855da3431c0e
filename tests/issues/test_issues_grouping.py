"""Grouping by fingerprint: repeats fold, resolved repeats reopen, merge and split."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput
from apps.core.exceptions import domain_status
from apps.issues.choices import EventKind, Status
from apps.issues.fingerprint import fingerprint_compute, message_normalise
from apps.issues.models import Issue, IssueEvent, Occurrence
from apps.issues.services import issue_merge, issue_triage, occurrence_split

pytestmark = pytest.mark.django_db


def _fail(path: str):
    with open(path) as fh:  # noqa: PTH123 - raises FileNotFoundError on purpose
        return fh.read()


def test_same_exception_twice_is_one_issue_with_count_two(report, trace_of):
    def boom(i):
        try:
            _fail(f"/data/run-{i}/case{i}.png")
        except FileNotFoundError as exc:
            return exc

    first, created1 = report(title="missing", traces=trace_of(boom(1)))
    second, created2 = report(title="missing again", traces=trace_of(boom(2)))
    assert (created1, created2) == (True, False)
    assert second.pk == first.pk
    second.refresh_from_db()
    assert second.occurrence_count == 2
    assert Occurrence.objects.filter(issue=first).count() == 2
    assert second.first_seen_at <= second.last_seen_at
    assert Issue.objects.count() == 1


def test_message_fingerprint_ignores_numbers_ids_and_paths(report):
    a, _ = report(title="Batch 12 failed at /home/ana/runs/42/ckpt.pt id 0xdeadbeef")
    b, _ = report(title="Batch 7 failed at /srv/bob/runs/9/ckpt.pt id 0x1234abcd")
    assert a.pk == b.pk
    c, created = report(title="Batch 7 failed at /srv/bob/runs/9/weights.pt id 0x1")
    assert created
    assert c.pk != a.pk


def test_normalise_strips_uuids_hex_and_numbers():
    text = "Study 3f2a1c9e-1b2c-4d5e-8f90-1234567890ab took 12.5 s on 0xff /a/b/c/file7.dcm"
    assert message_normalise(text) == "study <uuid> took <n> s on <hex> <path>/file<n>.dcm"


def test_category_is_part_of_the_fingerprint(report):
    a, _ = report(title="same text", category="data")
    b, created = report(title="same text", category="training")
    assert created
    assert a.pk != b.pk


def test_frames_fingerprint_uses_top_frames_not_line_numbers():
    frames1 = [{"filename": "/x/pkg/a.py", "lineno": 1, "function": "f"},
               {"filename": "/x/pkg/b.py", "lineno": 10, "function": "g"}]  # fmt: skip
    frames2 = [{"filename": "/home/y/pkg/a.py", "lineno": 99, "function": "f"},
               {"filename": "/home/y/pkg/b.py", "lineno": 77, "function": "g"}]  # fmt: skip
    fp = lambda frames: fingerprint_compute(  # noqa: E731
        category="data", exception_type="KeyError", frames=frames, message="ignored"
    )
    assert fp(frames1) == fp(frames2)
    assert fp(frames1) != fp([*frames1[:1], {**frames1[1], "function": "h"}])


def test_resolved_then_repeated_reopens_and_counts_a_recurrence(report, engineer):
    issue, _ = report(title="flaky loader")
    issue_triage(issue=issue, actor=engineer, status=Status.RESOLVED)
    again, created = report(title="flaky loader")
    assert not created
    assert again.pk == issue.pk
    again.refresh_from_db()
    assert again.status == Status.REOPENED
    assert again.recurrence_count == 1
    assert again.reopen_count == 1
    assert again.occurrence_count == 2
    assert again.first_resolved_at is not None
    assert IssueEvent.objects.filter(issue=issue, kind=EventKind.RECURRENCE).count() == 1
    # A further repeat while reopened does not count another recurrence.
    report(title="flaky loader")
    again.refresh_from_db()
    assert (again.recurrence_count, again.occurrence_count) == (1, 3)


def test_closed_issue_reopens_too(report, engineer):
    issue, _ = report(title="x")
    issue_triage(issue=issue, actor=engineer, status=Status.CLOSED)
    again, _ = report(title="x")
    again.refresh_from_db()
    assert again.status == Status.REOPENED
    assert again.recurrence_count == 1


def test_reopen_restarts_the_response_clock(report, engineer):
    past = timezone.now() - timedelta(days=10)
    issue, _ = report(title="old", severity="medium", now=past)
    assert issue.due_at == past + timedelta(days=3)
    issue_triage(issue=issue, actor=engineer, status=Status.RESOLVED)
    now = timezone.now()
    report(title="old", now=now)
    issue.refresh_from_db()
    assert issue.due_at == now + timedelta(days=3)


def test_merge_moves_occurrences_and_future_repeats(report, engineer):
    a, _ = report(title="error A")
    report(title="error A")
    b, _ = report(title="error B", severity="critical")
    target = issue_merge(source=a, target=b, actor=engineer)
    a.refresh_from_db()
    assert target.occurrence_count == 3
    assert target.severity == "critical"
    assert a.merged_into_id == b.pk
    assert a.status == Status.CLOSED
    assert a.occurrence_count == 0
    assert Occurrence.objects.filter(issue=b).count() == 3
    # A new repeat of A folds into B.
    again, created = report(title="error A")
    assert not created
    assert again.pk == b.pk
    assert again.occurrence_count == 4


def test_merge_into_itself_is_refused(report, engineer):
    a, _ = report(title="error A")
    with pytest.raises(InvalidInput) as exc:
        issue_merge(source=a, target=a, actor=engineer)
    assert exc.value.code == "invalid_merge"


def test_split_moves_one_occurrence_to_a_new_issue(report, engineer):
    issue, _ = report(title="mixed bag")
    report(title="mixed bag")
    report(title="mixed bag")
    occurrence = Occurrence.objects.filter(issue=issue).order_by("occurred_at").first()
    new = occurrence_split(occurrence=occurrence, actor=engineer)
    issue.refresh_from_db()
    occurrence.refresh_from_db()
    assert new.pk != issue.pk
    assert occurrence.issue_id == new.pk
    assert (issue.occurrence_count, new.occurrence_count) == (2, 1)
    assert IssueEvent.objects.filter(issue=issue, kind=EventKind.SPLIT).exists()
    # Repeats still fold into the original issue.
    again, _ = report(title="mixed bag")
    assert again.pk == issue.pk


def test_split_of_the_only_occurrence_is_refused(report, engineer):
    issue, _ = report(title="alone")
    with pytest.raises(InvalidInput) as exc:
        occurrence_split(occurrence=issue.occurrences.get(), actor=engineer)
    assert exc.value.code == "invalid_split"


def test_steps_are_ordered_and_due_follows_severity(report):
    now = timezone.now()
    steps = ["one", "two", "three"]
    issue, _ = report(title="steps", severity="critical", reproduction_steps=steps, now=now)
    assert [s.text for s in issue.steps.all()] == ["one", "two", "three"]
    assert [s.position for s in issue.steps.all()] == [1, 2, 3]
    assert issue.due_at == now + timedelta(hours=1)


def test_admin_durations_drive_due_times(report, admin_user):
    from apps.issues.services import issue_settings_update

    issue_settings_update(actor=admin_user, high_due_minutes=90)
    now = timezone.now()
    issue, _ = report(title="configurable", severity="high", now=now)
    assert issue.due_at == now + timedelta(minutes=90)
    with pytest.raises(InvalidInput):
        issue_settings_update(actor=admin_user, low_due_minutes=0)


def test_invalid_transition_is_refused(report, engineer):
    issue, _ = report(title="t")
    issue_triage(issue=issue, actor=engineer, status=Status.RESOLVED)
    with pytest.raises(Conflict) as exc:
        issue_triage(issue=issue, actor=engineer, status=Status.IN_PROGRESS)
    assert exc.value.code == "invalid_transition"
    assert domain_status(exc.value) == 409


def test_triage_records_timeline_events(report, engineer):
    issue, _ = report(title="t")
    issue_triage(issue=issue, actor=engineer, severity="low", status="triaged", assignee=engineer)
    kinds = list(IssueEvent.objects.filter(issue=issue).values_list("kind", flat=True))
    assert kinds == ["created", "severity", "status", "assignment"]


def test_assignee_must_be_able_to_triage(report, radiologist, engineer):
    issue, _ = report(title="t")
    with pytest.raises(InvalidInput) as exc:
        issue_triage(issue=issue, actor=engineer, assignee=radiologist)
    assert exc.value.code == "invalid_assignee"
