from django.contrib import admin

from apps.issues.models import Issue, IssueSettings, Notification


@admin.register(IssueSettings)
class IssueSettingsAdmin(admin.ModelAdmin):
    list_display = ("__str__", *[f"{s}_due_minutes" for s in ("critical", "high", "medium", "low")])

    def has_add_permission(self, request):
        return not IssueSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    list_display = ("id", "title", "category", "severity", "status", "occurrence_count", "due_at")
    list_filter = ("category", "severity", "status")
    search_fields = ("title",)
    raw_id_fields = ("reporter", "assignee", "study", "model_version", "merged_into")
    exclude = ("context",)


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("subject", "kind", "created_at", "sent_at", "error")
    readonly_fields = ("kind", "key", "issue", "subject", "body", "recipients", "sent_at", "error")
