"""Admin: the monitor settings (one row) editable; incidents and reports read-only (they
change only through the services, which keep the timeline)."""

from django.contrib import admin

from apps.monitoring.models import HealthRun, Incident, MonitorSettings, WorkerEnvironment


@admin.register(MonitorSettings)
class MonitorSettingsAdmin(admin.ModelAdmin):
    list_display = ("id", "window_cases", "max_mre_mm", "max_correction_rate",
                    "auto_review_all_on_safety", "ack_timeout_minutes", "oncall_levels",
                    "updated_at")  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return not MonitorSettings.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(_ReadOnly):
    list_display = ("id", "title", "trigger", "severity", "status", "occurrences", "opened_at",
                    "acknowledged_at", "resolved_at")  # fmt: skip
    list_filter = ("status", "trigger", "severity")


@admin.register(WorkerEnvironment)
class WorkerEnvironmentAdmin(_ReadOnly):
    list_display = ("hostname", "queue", "status", "reported_at")


@admin.register(HealthRun)
class HealthRunAdmin(_ReadOnly):
    list_display = ("id", "ran_at", "status", "source")
