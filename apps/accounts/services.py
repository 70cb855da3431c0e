"""Writes for accounts: API tokens, API clients, demo users."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.choices import Role
from apps.accounts.models import ApiToken, User

PREFIX_LENGTH = 8


def api_key_hash(*, raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; returns ``(token, raw_key)``. The raw key is shown once, never stored."""
    for _ in range(5):
        raw_key = secrets.token_urlsafe(32)  # 256 bits
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    prefix=raw_key[:PREFIX_LENGTH],
                    key_hash=api_key_hash(raw_key=raw_key),
                )
            return token, raw_key
        except IntegrityError:  # prefix collision: astronomically rare, retry
            continue
    raise RuntimeError("Could not allocate a unique API token prefix.")


def api_token_revoke(*, token: ApiToken) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Record use, at most once a minute (avoids a write per request)."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def user_role_set(*, user: User, role: str) -> User:
    """Put ``user`` in the group of ``role`` (other roles are kept)."""
    group = Group.objects.get(name=Role(role).value)
    user.groups.add(group)
    if role == Role.ADMIN and not user.is_staff:
        user.is_staff = True  # admins manage users in /admin/
        user.save(update_fields=["is_staff"])
    if hasattr(user, "_role_cache"):
        del user._role_cache
    return user


@transaction.atomic
def api_client_create(*, name: str) -> tuple[User, ApiToken, str]:
    """A machine account in group api_client, with a fresh token."""
    user, created = User.objects.get_or_create(username=name)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    user_role_set(user=user, role=Role.API_CLIENT)
    token, raw_key = api_token_create(user=user, name=f"{name} token")
    return user, token, raw_key


DEMO_USERS: list[tuple[str, str]] = [
    ("radiologist", Role.RADIOLOGIST),
    ("senior", Role.SENIOR_RADIOLOGIST),
    ("engineer", Role.ENGINEER),
    ("admin", Role.ADMIN),
]


@transaction.atomic
def demo_users_seed(
    *, password: str | None = None, reset: bool = False
) -> list[tuple[str, str, str | None]]:
    """One user per role; returns ``(username, role, password_or_None)``.

    Idempotent: an existing user keeps its password unless ``password`` is
    given or ``reset`` asks for a new random one.
    """
    result = []
    for username, role in DEMO_USERS:
        user, created = User.objects.get_or_create(username=username)
        shown: str | None = None
        if created or password or reset:
            shown = password or secrets.token_urlsafe(9)
            user.set_password(shown)
        if role == Role.ADMIN:
            user.is_staff = True
            user.is_superuser = True
        user.save()
        user_role_set(user=user, role=role)
        result.append((username, str(role), shown))
    return result
