from django.urls import path

from apps.models.views import lifecycle, registry

app_name = "models"

urlpatterns = [
    path("", registry.model_version_list_view, name="list"),
    path("<int:pk>/activate/", registry.model_version_activate_view, name="activate"),
    path("rollback/", registry.model_version_rollback_view, name="rollback"),
    path("runs/", lifecycle.run_list_view, name="runs"),
    path("runs/compare/", lifecycle.run_compare_view, name="run_compare"),
    path("runs/<int:pk>/", lifecycle.run_detail_view, name="run"),
    path("evaluations/", lifecycle.evaluation_list_view, name="evaluations"),
    path("evaluations/start/", lifecycle.evaluation_start_view, name="evaluation_start"),
    path("evaluations/compare/", lifecycle.evaluation_compare_view, name="evaluation_compare"),
    path("evaluations/<int:pk>/", lifecycle.evaluation_detail_view, name="evaluation"),
    path("gates/", lifecycle.release_gate_view, name="gates"),
    path("<int:pk>/shadow/", lifecycle.shadow_view, name="shadow"),
    path("<int:pk>/shadow/<str:action>/", lifecycle.shadow_action_view, name="shadow_action"),
]
