from django.urls import path

from apps.issues import views

app_name = "issues"

urlpatterns = [
    path("", views.issue_board_view, name="list"),
    path("new/", views.issue_create_view, name="new"),
    path("similar/", views.issue_similar_view, name="similar"),
    path("bulk/", views.issue_bulk_view, name="bulk"),
    path("metrics/", views.issue_metrics_view, name="metrics"),
    path("settings/", views.issue_settings_view, name="settings"),
    path("<int:pk>/", views.issue_detail_view, name="detail"),
    path("<int:pk>/triage/", views.issue_triage_view, name="triage"),
    path("<int:pk>/comment/", views.issue_comment_view, name="comment"),
    path("<int:pk>/merge/", views.issue_merge_view, name="merge"),
    path("occurrences/<int:pk>/split/", views.occurrence_split_view, name="split"),
]
