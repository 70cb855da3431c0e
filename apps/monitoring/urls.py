from django.urls import path

from apps.monitoring.views import clinical as views_clinical
from apps.monitoring.views import dashboard as views_dashboard
from apps.monitoring.views import incidents as views_incidents
from apps.monitoring.views import metrics as metrics_views
from apps.monitoring.views import probes as views
from apps.monitoring.views import workers as views_workers

app_name = "monitoring"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_views.metrics, name="metrics"),
    path("monitoring/workers/", views_workers.workers_view, name="workers"),
    path("monitoring/", views_dashboard.dashboard_view, name="dashboard"),
    path("monitoring/patterns/", views_dashboard.pattern_report_view, name="patterns"),
    path("monitoring/health/", views_dashboard.health_view, name="health"),
    path("monitoring/clinical/", views_clinical.clinical_view, name="clinical"),
    path(
        "monitoring/clinical/thresholds/",
        views_clinical.clinical_thresholds_view,
        name="clinical_thresholds",
    ),  # fmt: skip
    path("monitoring/incidents/", views_incidents.incidents_view, name="incidents"),
    path("monitoring/incidents/open/", views_incidents.incident_open_view, name="incident_open"),
    path(
        "monitoring/incidents/settings/",
        views_incidents.incident_settings_view,
        name="incident_settings",
    ),  # fmt: skip
    path(
        "monitoring/incidents/<int:pk>/link/",
        views_incidents.incident_link_view,
        name="incident_link",
    ),  # fmt: skip
    path("monitoring/incidents/<int:pk>/", views_incidents.incident_view, name="incident"),
    path(
        "monitoring/incidents/<int:pk>/ack/", views_incidents.incident_ack_view, name="incident_ack"
    ),
    path(
        "monitoring/incidents/<int:pk>/action/",
        views_incidents.incident_action_view,
        name="incident_action",
    ),  # fmt: skip
    path(
        "monitoring/incidents/<int:pk>/status/",
        views_incidents.incident_status_view,
        name="incident_status",
    ),  # fmt: skip
    path(
        "monitoring/incidents/<int:pk>/record/",
        views_incidents.incident_record_view,
        name="incident_record",
    ),  # fmt: skip
    path(
        "monitoring/incidents/<int:pk>/note/",
        views_incidents.incident_note_view,
        name="incident_note",
    ),  # fmt: skip
    path(
        "monitoring/ack/<str:token>/",
        views_incidents.incident_ack_link_view,
        name="incident_ack_link",
    ),  # fmt: skip
]
