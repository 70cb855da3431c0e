from django.contrib import admin

from apps.outbox.models import OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "status", "publish_count", "failures", "available_at",
                    "created_at", "consumed_at", "last_error")  # fmt: skip
    list_filter = ("status", "task")
    readonly_fields = [f.name for f in OutboxMessage._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
