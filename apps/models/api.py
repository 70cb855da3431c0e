"""Model lifecycle API: training runs (create, metrics, finish, import, read) and
evaluation runs (start, read, compare). Engineers and admins; training scripts with a
``report_training`` token create and feed runs."""

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
from apps.models import selectors
from apps.models.models import EvaluationRun, TrainingRun
from apps.models.services import evaluation as ev
from apps.models.services import runs as run_services
from apps.models.services.imports import run_import

READ = ("accounts.register_model", "accounts.manage_models")
WRITE = ("accounts.report_training", "accounts.register_model")


def run_payload(run: TrainingRun, *, findings: bool = True) -> dict[str, Any]:
    out = {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "source": run.source,
        "params": run.params,
        "dataset_version": run.dataset_version_id,
        "model_version": run.model_version_id,
        "started_at": run.started_at.isoformat(),
        "last_step": run.last_step,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "early_stopping_step": run.early_stopping_step,
        "issue": run.issue_id,
    }
    if findings:
        out["findings"] = selectors.run_finding_rows(run=run)
    return out


def _run(pk: int, user: Any) -> TrainingRun:
    run = selectors.training_run_get(pk=pk)
    if run is None or not selectors.training_run_visible(run=run, user=user):
        raise NotFound("run_not_found", "No training run with that id.")
    return run


class RunListApi(APIView):
    class RunCreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        params = serializers.DictField(required=False)
        environment = serializers.DictField(required=False)
        dataset_version = serializers.CharField(max_length=160, required=False, allow_blank=True)

    def get_permissions(self):
        return [api_perm(WRITE if self.request.method == "POST" else READ)()]

    @extend_schema(responses={200: dict}, operation_id="v1_runs_list")
    def get(self, request: Request) -> Response:
        return Response(
            [run_payload(r, findings=False) for r in selectors.training_run_list()[:200]]
        )

    @extend_schema(request=RunCreateInputSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        s = self.RunCreateInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = run_services.run_create(
            user=request.user,
            source="api" if "environment" not in s.validated_data else "client",
            **s.validated_data,
        )
        return Response(run_payload(run), status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    permission_classes = [api_perm(WRITE)]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        return Response(run_payload(_run(pk, request.user)))


class RunMetricsApi(APIView):
    permission_classes = [api_perm(WRITE)]

    class MetricsInputSerializer(serializers.Serializer):
        rows = serializers.ListField(
            child=serializers.DictField(), max_length=run_services.MAX_ROWS
        )

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        """Series ``{name: [[step, value], ...]}`` after ``?after=STEP`` (live charts)."""
        run = _run(pk, request.user)
        try:
            after = int(request.query_params.get("after", -1))
        except ValueError:
            raise InvalidInput("invalid_after", "after is a step number.") from None
        return Response(
            {"last_step": run.last_step, "series": selectors.run_series_after(run=run, after=after)}
        )

    @extend_schema(request=MetricsInputSerializer, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        run = _run(pk, request.user)
        s = self.MetricsInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        return Response(
            {"stored": run_services.run_log_metrics(run=run, rows=s.validated_data["rows"])}
        )


class RunFinishApi(APIView):
    permission_classes = [api_perm(WRITE)]

    class FinishInputSerializer(serializers.Serializer):
        status = serializers.CharField(
            max_length=10, default="finished", help_text="finished, failed or aborted"
        )
        weights_path = serializers.CharField(
            max_length=500, required=False, allow_blank=True, default=""
        )
        model_name = serializers.CharField(
            max_length=100, required=False, allow_blank=True, default=""
        )
        model_version = serializers.CharField(
            max_length=50, required=False, allow_blank=True, default=""
        )
        error = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")

    @extend_schema(request=FinishInputSerializer, responses={200: dict})
    def post(self, request: Request, pk: int) -> Response:
        s = self.FinishInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = run_services.run_finish(
            run=_run(pk, request.user), user=request.user, **s.validated_data
        )
        return Response(run_payload(run))


class RunImportApi(APIView):
    permission_classes = [api_perm(READ)]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class ImportInputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        format = serializers.ChoiceField(
            choices=["", "csv", "tensorboard"], required=False, default=""
        )
        file = serializers.FileField(required=False)
        path = serializers.CharField(max_length=1000, required=False, allow_blank=True)
        dataset_version = serializers.CharField(max_length=160, required=False, allow_blank=True)

    @extend_schema(request=ImportInputSerializer, responses={201: dict})
    def post(self, request: Request) -> Response:
        s = self.ImportInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        run = run_import(user=request.user, **s.validated_data)
        return Response(run_payload(run), status=status.HTTP_201_CREATED)


def evaluation_payload(e: EvaluationRun) -> dict[str, Any]:
    return {
        "id": e.pk,
        "model_version": e.model_version_id,
        "dataset_version": e.dataset_version_id,
        "split": e.split,
        "status": e.status,
        "done": e.done,
        "total": e.total,
        "metrics": e.metrics,
        "error": e.error,
    }


class EvaluationListApi(APIView):
    permission_classes = [api_perm(READ)]

    class EvaluateInputSerializer(serializers.Serializer):
        model_version = serializers.CharField(max_length=160)
        dataset_version = serializers.CharField(max_length=160)
        split = serializers.ChoiceField(choices=list(ev.SPLITS), default="test")

    @extend_schema(request=EvaluateInputSerializer, responses={202: dict})
    def post(self, request: Request) -> Response:
        from apps.datasets.selectors import dataset_version_find

        s = self.EvaluateInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        try:
            mv = selectors.model_version_find(ref=s.validated_data["model_version"])
        except ValueError:
            mv = None
        if mv is None:
            raise InvalidInput(
                "unknown_model_version",
                "No such model version.",
                details={"field": "model_version"},
            )
        dv = dataset_version_find(ref=s.validated_data["dataset_version"])
        if dv is None:
            raise InvalidInput(
                "unknown_dataset_version",
                "No such dataset version.",
                details={"field": "dataset_version"},
            )
        run = ev.evaluation_start(
            model_version=mv, dataset_version=dv, split=s.validated_data["split"], user=request.user
        )
        return Response(evaluation_payload(run), status=status.HTTP_202_ACCEPTED)


class EvaluationDetailApi(APIView):
    permission_classes = [api_perm(READ)]

    @extend_schema(responses={200: dict})
    def get(self, request: Request, pk: int) -> Response:
        found = EvaluationRun.objects.filter(pk=pk).first()
        if found is None:
            raise NotFound("evaluation_not_found", "No evaluation with that id.")
        return Response(evaluation_payload(found))


class EvaluationCompareApi(APIView):
    permission_classes = [api_perm(READ)]

    @extend_schema(responses={200: dict})
    def get(self, request: Request) -> Response:
        pair = []
        for key in ("a", "b"):
            value = request.query_params.get(key, "")
            found = (
                EvaluationRun.objects.filter(pk=int(value), status="done").first()
                if value.isdigit()
                else None
            )
            if found is None:
                raise InvalidInput(
                    "invalid_evaluation",
                    f"{key}: the id of a finished evaluation.",
                    details={"field": key},
                )
            pair.append(found)
        return Response(ev.evaluation_compare(a=pair[0], b=pair[1]))
