from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

from apps.accounts.choices import Role, SecurityEventKind
from apps.accounts.roles import PERMISSIONS


class User(AbstractUser):
    """The user. Roles are groups (see apps.accounts.roles)."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        permissions = list(PERMISSIONS.items())

    def _group_names(self) -> set[str]:
        if not hasattr(self, "_role_cache"):
            self._role_cache = set(self.groups.values_list("name", flat=True)) if self.pk else set()
        return self._role_cache

    @property
    def roles(self) -> set[str]:
        names = self._group_names() & set(Role.values)
        if self.is_superuser:
            names.add(Role.ADMIN)
        return names

    @property
    def role(self) -> str | None:
        """The highest role, or None."""
        names = self.roles
        return next((r.value for r in Role if r.value in names), None)

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & {str(r) for r in roles})

    @property
    def is_api_client(self) -> bool:
        """A machine account: token only, never a password or a session."""
        if self.is_superuser:
            return False
        if hasattr(self, "_machine"):  # annotated by PeopleOnlyBackend.get_user
            return bool(self._machine)
        return Role.API_CLIENT.value in self._group_names()


class ApiToken(models.Model):
    """A machine credential. Only the SHA-256 of the key is stored.

    The raw key is 256 bits from ``secrets``: with that much entropy a single
    fast hash is enough (no brute force is possible), unlike passwords which
    need a slow KDF. ``prefix`` (first 8 characters) is the lookup index.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SecurityEvent(models.Model):
    """Failed logins, lockouts, unlocks and token failures: the security audit trail.

    ``username`` is what was typed (may name nobody); ``ip_address`` the client's.
    """

    kind = models.CharField(max_length=32, choices=SecurityEventKind.choices, db_index=True)
    username = models.CharField(max_length=150, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    path = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )  # fmt: skip
    detail = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.username or self.ip_address}"
