"""Study intake API (thin: parse, call a service, shape the answer)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.clinical import selectors, services
from apps.clinical.choices import StudyStatus
from apps.clinical.parsers import DicomParser
from apps.clinical.serializers import (
    StudyCreateOutputSerializer,
    StudyOutputSerializer,
    study_payload,
    study_url,
)
from apps.core.errors import Forbidden, InvalidInput, LengthRequired, NotFound, PayloadTooLarge
from apps.core.requests import Body


class StudyPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def _upload(request: Request) -> Body:
    if request.content_type and request.content_type.startswith("multipart/"):
        upload = request.data.get("file")
        if not isinstance(upload, UploadedFile):
            raise InvalidInput("missing_file", "Send the DICOM file in the multipart field 'file'.")
        if upload.size > settings.DICOM_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                "payload_too_large",
                f"The file is larger than {settings.DICOM_MAX_UPLOAD_BYTES} bytes.",
            )
        data = upload.read()
        return Body(data=data, sha256=hashlib.sha256(data).hexdigest())
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise LengthRequired(
            "length_required",
            "Send the file with a Content-Length header: chunked transfer encoding is not "
            "supported.",
        )
    body = request.data
    if not isinstance(body, Body) or not body.data:
        raise InvalidInput("empty_file", "The request body is empty.")
    return body


class StudyListCreateApi(APIView):
    parser_classes = [DicomParser, MultiPartParser]

    @extend_schema(
        request={
            "application/dicom": bytes,
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            },
        },
        responses={
            202: StudyCreateOutputSerializer,
            200: OpenApiResponse(StudyCreateOutputSerializer, "the same instance was sent before"),
        },
    )
    def post(self, request: Request) -> Response:
        if not request.user.has_perm("accounts.submit_study"):
            raise Forbidden("permission_denied", "Only API clients may submit studies.")
        upload = _upload(request)
        study, created = services.study_receive(
            user=request.user, data=upload.data, sha256=upload.sha256
        )
        body = {"id": study.public_id, "status": study.status, "url": study_url(study, request)}
        return Response(
            StudyCreateOutputSerializer(body).data,
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=StudyStatus.values)],
        responses=StudyOutputSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        visibility = selectors.study_visibility(request.user)
        if visibility is None:
            raise Forbidden("permission_denied", "You may not list studies.")
        wanted = request.query_params.get("status")
        if wanted and wanted not in StudyStatus.values:
            raise InvalidInput(
                "invalid_filter",
                f"status must be one of {', '.join(StudyStatus.values)}.",
                details={"status": wanted[:40]},
            )
        qs = selectors.study_list(user=request.user, status=wanted)
        paginator = StudyPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        rows = [study_payload(s, visibility=visibility, request=request) for s in page]
        return paginator.get_paginated_response(StudyOutputSerializer(rows, many=True).data)


class StudyDetailApi(APIView):
    @extend_schema(responses=StudyOutputSerializer)
    def get(self, request: Request, public_id) -> Response:
        visibility = selectors.study_visibility(request.user)
        study = selectors.study_get(user=request.user, public_id=public_id) if visibility else None
        if study is None:  # another client's study looks exactly like a missing one
            raise NotFound("study_not_found", "No study with this id is visible to you.")
        data = study_payload(study, visibility=visibility, request=request)
        return Response(StudyOutputSerializer(data).data)
