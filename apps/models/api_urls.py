from django.urls import path

from apps.models import api

app_name = "models-api"

urlpatterns = [
    path("runs/", api.RunListApi.as_view(), name="runs"),
    path("runs/import/", api.RunImportApi.as_view(), name="run_import"),
    path("runs/<int:pk>/", api.RunDetailApi.as_view(), name="run"),
    path("runs/<int:pk>/metrics/", api.RunMetricsApi.as_view(), name="run_metrics"),
    path("runs/<int:pk>/finish/", api.RunFinishApi.as_view(), name="run_finish"),
    path("evaluations/", api.EvaluationListApi.as_view(), name="evaluations"),
    path("evaluations/compare/", api.EvaluationCompareApi.as_view(), name="evaluation_compare"),
    path("evaluations/<int:pk>/", api.EvaluationDetailApi.as_view(), name="evaluation"),
]
