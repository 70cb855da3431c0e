from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.shortcuts import redirect

from apps.accounts.models import ApiToken, SecurityEvent, User
from apps.accounts.services import account_unlock


@admin.register(User)
class MahtqaUserAdmin(UserAdmin):
    """Django's user admin, except that API-client accounts never get a password."""

    actions = ["clear_lockout"]

    def user_change_password(self, request, id, form_url=""):  # noqa: A002 - Django's name
        user = self.get_object(request, id)
        if user is not None and user.is_api_client:
            self.message_user(
                request,
                "API clients are token-only: they cannot have a password. "
                "Use create_api_client / revoke_api_token for their tokens.",
                messages.ERROR,
            )
            return redirect("admin:accounts_user_change", user.pk)
        return super().user_change_password(request, id, form_url)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        user = form.instance
        if hasattr(user, "_role_cache"):
            del user._role_cache
        if user.is_api_client and user.has_usable_password():
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.message_user(
                request, "The password was removed: API clients are token-only.", messages.WARNING
            )

    @admin.action(description="Clear sign-in lockout (audited)")
    def clear_lockout(self, request, queryset) -> None:
        cleared = sum(account_unlock(actor=request.user, username=u.username) for u in queryset)
        self.message_user(request, f"{cleared} lockout record(s) cleared.", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("name", "prefix", "user__username")

    def has_add_permission(self, request) -> bool:
        return False  # tokens are created by create_api_client (raw key shown once)


@admin.register(SecurityEvent)
class SecurityEventAdmin(admin.ModelAdmin):
    """Read-only: the security audit trail."""

    list_display = ("created_at", "kind", "username", "ip_address", "path", "actor", "detail")
    list_filter = ("kind",)
    search_fields = ("username", "ip_address")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
