from django.contrib import admin

from apps.models.models import ModelVersion


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("name", "version", "is_active", "activated_at", "registered_at")
    readonly_fields = ("sha256", "is_active", "activated_at", "activated_by", "registered_at")
