"""Issue API: report (token or session; idempotent by fingerprint) and read (triage)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clinical.selectors import study_get
from apps.core.errors import InvalidInput, NotFound, PayloadTooLarge
from apps.core.permissions import api_perm
from apps.datasets.selectors import dataset_version_get
from apps.issues.choices import Source
from apps.issues.models import Issue
from apps.issues.selectors import IssueFilters, issue_list
from apps.issues.serializers import (
    IssueOutputSerializer,
    IssueReportInputSerializer,
    SimilarIssueOutputSerializer,
    SimilarQueryInputSerializer,
    issue_payload,
    similar_payload,
)
from apps.issues.services import issue_report, issue_similar_find
from apps.models.selectors import model_version_find

REPORT_PERM = "accounts.report_issue"
TRIAGE_PERM = "accounts.triage_issue"
MAX_BODY_BYTES = 1024 * 1024
LIST_LIMIT = 100


def _study(value: Any, *, user: Any) -> Any:
    """The linked study, if the reporter may see it. "Not yours" and "does not
    exist" are the same 404, so a client cannot probe other clients' ids."""
    if not value:
        return None
    study = study_get(user=user, public_id=value)
    if study is None:
        raise NotFound("not_found", "No study with that id.", details={"field": "study"})
    return study


def _model_version(value: str) -> Any:
    if not value:
        return None
    try:
        found = model_version_find(ref=value)
    except ValueError:
        raise InvalidInput(
            "invalid_model_version", "model_version is an id or 'name@version'.",
            details={"field": "model_version"},
        ) from None  # fmt: skip
    if found is None:
        raise InvalidInput(
            "unknown_model_version", "No such model version.", details={"field": "model_version"}
        )
    return found


def _dataset_version(value: int | None) -> Any:
    if value is None:
        return None
    found = dataset_version_get(pk=value)
    if found is None:
        raise InvalidInput(
            "unknown_dataset_version",
            "No such dataset version.",
            details={"field": "dataset_version"},
        )
    return found


def _visible_reporter(request: Request) -> int | None:
    """None for a triager (every issue); else the caller, who sees only its own issues."""
    return None if request.user.has_perm(TRIAGE_PERM) else request.user.pk


class IssueListCreateApi(APIView):
    def get_permissions(self):
        perm = REPORT_PERM if self.request.method == "POST" else TRIAGE_PERM
        return [api_perm(perm)()]

    @extend_schema(
        request=IssueReportInputSerializer,
        responses={
            201: OpenApiResponse(
                IssueOutputSerializer, description="A new issue, with `similar` resolved issues"
            ),
            200: OpenApiResponse(
                IssueOutputSerializer,
                description="Folded into an issue, with `similar` resolved issues",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY_BYTES:
            raise PayloadTooLarge("payload_too_large", "The report is larger than 1 MiB.")
        if not isinstance(request.data, dict):
            raise InvalidInput("invalid_body", "Send a JSON object.")
        serializer = IssueReportInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        study = _study(data.pop("study", None), user=request.user)
        model_version = _model_version(data.pop("model_version", ""))
        dataset_version = _dataset_version(data.pop("dataset_version", None))
        issue, created = issue_report(
            **data, study=study, model_version=model_version, dataset_version=dataset_version,
            reporter=request.user,
            source=Source.API,
        )  # fmt: skip
        return Response(
            issue_payload(
                issue,
                created=created,
                similar=issue_similar_find(issue=issue, reporter_id=_visible_reporter(request)),
            ),  # fmt: skip
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(responses=IssueOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        issues = issue_list(
            filters=IssueFilters.from_query(request.query_params), user=request.user
        )
        return Response([issue_payload(i) for i in issues[:LIST_LIMIT]])


class IssueDetailApi(APIView):
    permission_classes = [api_perm(TRIAGE_PERM)]

    @extend_schema(responses=IssueOutputSerializer)
    def get(self, request: Request, pk: int) -> Response:
        issue = Issue.objects.select_related("assignee").filter(pk=pk).first()
        if issue is None:
            raise NotFound("issue_not_found", "No issue with that id.")
        return Response(issue_payload(issue))


class IssueSimilarApi(APIView):
    """Resolved issues like this one, with their resolution notes. A triager sees every
    issue; anyone else who may report only the issues they reported (another one is the
    same 404 as a missing one)."""

    permission_classes = [api_perm(REPORT_PERM)]

    @extend_schema(
        parameters=[SimilarQueryInputSerializer],
        responses={
            200: SimilarIssueOutputSerializer(many=True),
            404: OpenApiResponse(description="`not_found`: no such issue, or not yours"),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        query = SimilarQueryInputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        issue = Issue.objects.filter(pk=pk).first()
        visible = issue is not None and (
            request.user.has_perm(TRIAGE_PERM) or issue.reporter_id == request.user.pk
        )
        if not visible:
            raise NotFound("not_found", "No issue with that id.")
        similar = issue_similar_find(
            issue=issue, limit=query.validated_data["limit"],
            reporter_id=_visible_reporter(request),
        )  # fmt: skip
        return Response(similar_payload(similar))
