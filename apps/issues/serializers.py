"""API input/output shapes for issues."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from apps.issues.choices import Category, Severity
from apps.issues.models import Issue


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


def issue_payload(issue: Issue, *, created: bool | None = None) -> dict[str, Any]:
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
    return IssueOutputSerializer(data).data
