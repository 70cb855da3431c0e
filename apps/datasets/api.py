"""Dataset API: every page action (register, validate, report, profile, suspects,
correct). Engineers and admins; token or session."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.errors import InvalidInput, NotFound
from apps.core.permissions import api_perm
from apps.datasets import selectors, services
from apps.datasets.choices import Layout, Severity, SuspectStatus
from apps.datasets.models import DatasetVersion
from apps.datasets.presenters import run_export_rows
from apps.models.selectors import model_version_active, model_version_find

PERMS = ("accounts.register_model", "accounts.manage_models")
FINDINGS_LIMIT = 1000


class _Base(APIView):
    permission_classes = [api_perm(PERMS)]


def _version(pk: int) -> DatasetVersion:
    version = selectors.dataset_version_get(pk=pk)
    if version is None:
        raise NotFound("dataset_version_not_found", "No dataset version with that id.")
    return version


def version_payload(v: DatasetVersion) -> dict[str, Any]:
    return {
        "id": v.pk,
        "dataset": v.dataset.name,
        "number": v.number,
        "label": v.label,
        "layout": v.layout,
        "source": v.source_kind,
        "root": v.root_label,
        "content_hash": v.content_hash,
        "images": v.image_count,
        "files": v.file_count,
        "bytes": v.total_bytes,
        "annotators": v.annotators,
        "spacing_mm": list(v.spacing) if v.spacing else None,
        "parent": v.parent_id,
        "created_at": v.created_at.isoformat(),
    }


def run_payload(run, *, findings: bool = False) -> dict[str, Any]:
    out = {
        "id": run.pk,
        "version": run.version_id,
        "status": run.status,
        "options": run.options,
        "progress": services.validation_run_progress(run=run),
        "counts": run.counts,
        "summary": run.summary,
        "issue": run.issue_id,
        "error": run.error,
    }
    if findings:
        out["findings"] = run_export_rows(run=run)
    return out


class DatasetListApi(_Base):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class DatasetRegisterInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        path = serializers.CharField(max_length=1000, required=False, allow_blank=True)
        file = serializers.FileField(required=False)
        layout = serializers.ChoiceField(choices=Layout.choices, required=False, allow_blank=True)
        spacing = serializers.CharField(max_length=40, required=False, allow_blank=True)
        notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "id": d.pk,
                    "name": d.name,
                    "versions": [version_payload(v) for v in d.versions.all()],
                }
                for d in selectors.dataset_list()
            ]
        )

    @extend_schema(request=DatasetRegisterInputSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        s = self.DatasetRegisterInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        data = dict(s.validated_data)
        upload, path = data.pop("file", None), data.pop("path", "")
        if bool(upload) == bool(path):
            raise InvalidInput(
                "path_or_file",
                "Send either 'path' (a folder under a dataset root) or 'file' (a zip).",
            )
        if upload is not None:
            version = services.dataset_register_zip(
                upload=upload, filename=upload.name, user=request.user, **data
            )
        else:
            version = services.dataset_register_folder(path=path, user=request.user, **data)
        return Response(version_payload(version), status=status.HTTP_201_CREATED)


class DatasetVersionApi(_Base):
    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        version = _version(pk)
        latest = selectors.validation_run_latest(version=version)
        return Response(
            {**version_payload(version), "latest_run": run_payload(latest) if latest else None}
        )


class ValidationStartApi(_Base):
    class ValidationStartInputSerializer(serializers.Serializer):
        consistency_mm = serializers.FloatField(
            required=False, default=2.0, min_value=0.1, max_value=20
        )

    @extend_schema(request=ValidationStartInputSerializer, responses={202: dict})
    def post(self, request: Request, pk: int) -> Response:
        s = self.ValidationStartInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = services.validation_run_start(
            version=_version(pk), user=request.user, **s.validated_data
        )
        return Response(run_payload(run), status=status.HTTP_202_ACCEPTED)


class ValidationRunApi(_Base):
    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        run = selectors.validation_run_get(pk=pk)
        if run is None:
            raise NotFound("run_not_found", "No validation run with that id.")
        return Response(run_payload(run))


class FindingListApi(_Base):
    class FindingFilterSerializer(serializers.Serializer):
        severity = serializers.ChoiceField(choices=Severity.choices, required=False)
        code = serializers.CharField(max_length=48, required=False)
        landmark = serializers.CharField(max_length=4, required=False)
        image = serializers.CharField(max_length=200, required=False)

    @extend_schema(parameters=[FindingFilterSerializer], responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        run = selectors.validation_run_get(pk=pk)
        if run is None:
            raise NotFound("run_not_found", "No validation run with that id.")
        s = self.FindingFilterSerializer(data=request.query_params)
        s.is_valid(raise_exception=True)
        qs = selectors.finding_list(run=run, filters=selectors.FindingFilters(**s.validated_data))
        return Response(
            [
                {
                    "id": f.pk,
                    "severity": f.severity,
                    "code": f.code,
                    "image": f.image.key if f.image else "",
                    "landmark": f.landmark,
                    "annotator": f.annotator,
                    "message": f.message,
                    "details": f.details,
                }
                for f in qs[:FINDINGS_LIMIT]
            ]
        )


class ProfileStartApi(_Base):
    class ProfileStartInputSerializer(serializers.Serializer):
        batch_sizes = serializers.ListField(
            child=serializers.IntegerField(), required=False, default=[1, 4, 8]
        )
        num_workers = serializers.ListField(
            child=serializers.IntegerField(), required=False, default=[0, 1, 2]
        )
        batches = serializers.IntegerField(required=False, default=5)

    @extend_schema(request=ProfileStartInputSerializer, responses={202: dict})
    def post(self, request: Request, pk: int) -> Response:
        s = self.ProfileStartInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = services.profile_run_start(
            version=_version(pk), user=request.user, **s.validated_data
        )
        return Response(_profile_payload(run), status=status.HTTP_202_ACCEPTED)


def _profile_payload(run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "version": run.version_id,
        "status": run.status,
        "done": run.done,
        "total": run.total,
        "options": run.options,
        "report": run.report,
        "error": run.error,
    }


class ProfileRunApi(_Base):
    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        run = selectors.profile_run_get(pk=pk)
        if run is None:
            raise NotFound("profile_not_found", "No profile with that id.")
        return Response(_profile_payload(run))


def _suspect_payload(s) -> dict[str, Any]:
    return {
        "id": s.pk,
        "image": s.image.key,
        "annotator": s.annotator,
        "landmark": s.landmark,
        "source": s.source,
        "evidence": s.evidence,
        "distances": s.distances,
        "points": s.points,
        "status": s.status,
        "note": s.note,
    }


class SuspectListApi(_Base):
    class SuspectFindInputSerializer(serializers.Serializer):
        oof = serializers.CharField(max_length=1000, required=False, allow_blank=True)
        model = serializers.CharField(max_length=160, required=False, allow_blank=True)

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        status_filter = request.query_params.get("status", "")
        if status_filter and status_filter not in SuspectStatus.values:
            raise InvalidInput(
                "invalid_status", f"status is one of {', '.join(SuspectStatus.values)}."
            )
        return Response(
            [
                _suspect_payload(s)
                for s in selectors.suspect_list(version=_version(pk), status=status_filter)
            ]
        )

    @extend_schema(request=SuspectFindInputSerializer, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        """Find suspects from an out-of-fold file (``oof``) or a registered model
        (``model``: id or name@version; the active one when both are empty)."""
        version = _version(pk)
        s = self.SuspectFindInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        if s.validated_data.get("oof"):
            n = services.suspects_find_from_oof(version=version, path=s.validated_data["oof"])
        else:
            ref = s.validated_data.get("model", "")
            try:
                model = model_version_find(ref=ref) if ref else model_version_active()
            except ValueError:
                raise InvalidInput(
                    "invalid_model_version", "model is an id or 'name@version'."
                ) from None
            if model is None:
                raise InvalidInput(
                    "unknown_model_version", "No such model version (or none is active)."
                )
            predictions = services.predictions_from_model(version=version, model_version=model)
            n = services.suspects_find(
                version=version, predictions=predictions, source=f"model:{model}"
            )
        return Response(
            {
                "found": n,
                "suspects": [_suspect_payload(x) for x in selectors.suspect_list(version=version)],
            }
        )


class SuspectDecideApi(_Base):
    class SuspectDecideInputSerializer(serializers.Serializer):
        decision = serializers.ChoiceField(
            choices=[SuspectStatus.CONFIRMED, SuspectStatus.DISMISSED]
        )
        note = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=SuspectDecideInputSerializer, responses={200: dict})
    def post(self, request: Request, pk: int, suspect_id: int) -> Response:
        version = _version(pk)
        suspect = version.suspects.select_related("image").filter(pk=suspect_id).first()
        if suspect is None:
            raise NotFound("suspect_not_found", "No suspect with that id in this version.")
        s = self.SuspectDecideInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        suspect = services.suspect_decide(
            suspect=suspect,
            user=request.user,
            ip=request.META.get("REMOTE_ADDR"),
            **s.validated_data,
        )
        return Response(_suspect_payload(suspect))


class CorrectApi(_Base):
    @extend_schema(request=None, responses={201: dict})
    def post(self, request: Request, pk: int) -> Response:
        derived = services.dataset_version_correct(
            version=_version(pk), user=request.user, ip=request.META.get("REMOTE_ADDR")
        )
        return Response(version_payload(derived), status=status.HTTP_201_CREATED)
