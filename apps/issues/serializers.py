"""API input/output shapes for issues."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.issues.choices import Category, Severity
from apps.issues.models import Issue
from apps.issues.services.similar import DEFAULT_LIMIT, MAX_LIMIT, SimilarIssue


class FrameSerializer(serializers.Serializer):
    filename = serializers.CharField(max_length=500, allow_blank=True)
    lineno = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    function = serializers.CharField(max_length=300, allow_blank=True)
    code = serializers.CharField(max_length=1000, allow_blank=True, required=False, default="")


class TraceSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=200)
    message = serializers.CharField(max_length=5000, allow_blank=True, required=False, default="")
    frames = serializers.ListField(child=FrameSerializer(), max_length=100, required=False)


class IssueReportInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    category = serializers.ChoiceField(choices=Category.choices)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.MEDIUM)
    description = serializers.CharField(max_length=20_000, allow_blank=True, required=False)
    reproduction_steps = serializers.ListField(
        child=serializers.CharField(max_length=2000), max_length=50, required=False
    )
    exception_type = serializers.CharField(max_length=200, allow_blank=True, required=False)
    message = serializers.CharField(max_length=5000, allow_blank=True, required=False)
    traces = serializers.ListField(child=TraceSerializer(), max_length=5, required=False)
    environment = serializers.DictField(required=False)
    system_metrics = serializers.DictField(required=False)
    configuration = serializers.DictField(required=False)
    data_state = serializers.DictField(required=False)
    study = serializers.UUIDField(required=False, allow_null=True)
    dataset_name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    dataset_version = serializers.IntegerField(required=False, min_value=1)
    model_version = serializers.CharField(max_length=160, required=False, allow_blank=True)
    fingerprint = serializers.RegexField(r"^[\w.:|/-]{1,200}$", required=False)
    phi_values = serializers.ListField(
        child=serializers.CharField(max_length=200), max_length=50, required=False
    )


class SimilarIssueOutputSerializer(serializers.Serializer):
    """A resolved issue like the report, with what fixed it."""

    id = serializers.IntegerField()
    url = serializers.CharField()
    title = serializers.CharField()
    status = serializers.CharField()
    category = serializers.CharField()
    score = serializers.FloatField(help_text="0..1, field-weighted TF-IDF cosine.")
    matched_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="Fields that matched, best first: title, exception, message, frames, text.",
    )
    matched_terms = serializers.ListField(child=serializers.CharField())
    resolution_note = serializers.CharField(allow_blank=True)
    resolved_at = serializers.DateTimeField(allow_null=True)


class SimilarQueryInputSerializer(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)


class IssueOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.CharField()
    title = serializers.CharField()
    category = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
    occurrence_count = serializers.IntegerField()
    recurrence_count = serializers.IntegerField()
    fingerprint = serializers.CharField()
    first_seen_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    assignee = serializers.CharField(allow_null=True)
    created = serializers.BooleanField(required=False)
    similar = SimilarIssueOutputSerializer(
        many=True, required=False, help_text="On a report: resolved issues like this one."
    )


def similar_payload(similar: Sequence[SimilarIssue]) -> list[dict[str, Any]]:
    rows = [
        {
            "id": s.id,
            "url": reverse("issues:detail", args=[s.id]),
            "title": s.title,
            "status": s.status,
            "category": s.category,
            "score": s.score,
            "matched_fields": list(s.fields),
            "matched_terms": list(s.terms),
            "resolution_note": s.resolution_note,
            "resolved_at": s.resolved_at,
        }  # fmt: skip
        for s in similar
    ]
    return SimilarIssueOutputSerializer(rows, many=True).data


def issue_payload(
    issue: Issue, *, created: bool | None = None, similar: Sequence[SimilarIssue] | None = None
) -> dict[str, Any]:
    data = {
        "id": issue.pk,
        "url": reverse("issues:detail", args=[issue.pk]),
        "title": issue.title,
        "category": issue.category,
        "severity": issue.severity,
        "status": issue.status,
        "occurrence_count": issue.occurrence_count,
        "recurrence_count": issue.recurrence_count,
        "fingerprint": issue.fingerprint,
        "first_seen_at": issue.first_seen_at,
        "last_seen_at": issue.last_seen_at,
        "due_at": issue.due_at,
        "assignee": issue.assignee.username if issue.assignee_id else None,
    }
    if created is not None:
        data["created"] = created
    payload = IssueOutputSerializer(data).data
    if similar is not None:
        payload["similar"] = similar_payload(similar)
    return payload
