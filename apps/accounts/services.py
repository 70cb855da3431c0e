"""Writes for accounts: API tokens, API clients, demo users."""

from __future__ import annotations

import logging
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.choices import Role, SecurityEventKind
from apps.accounts.keys import PREFIX_LENGTH, api_key_hash
from apps.accounts.models import ApiToken, SecurityEvent, User
from apps.core.errors import InvalidInput

logger = logging.getLogger(__name__)


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; returns ``(token, raw_key)``. The raw key is shown once, never stored."""
    for _ in range(20):
        raw_key = secrets.token_urlsafe(32)  # 256 bits
        if raw_key.startswith("-"):  # `revoke_api_token -abc...` would read as an option
            continue
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


# --- Security: lockouts, unlocks, token failures ----------------------------------


def security_event_record(
    *, kind: str, username: str = "", ip_address: str | None = None, path: str = "",
    actor: User | None = None, detail: str = "",
) -> SecurityEvent:  # fmt: skip
    return SecurityEvent.objects.create(
        kind=kind, username=username[:150], ip_address=ip_address or None, path=path[:200],
        actor=actor, detail=detail[:300],
    )  # fmt: skip


def account_unlock(*, actor: User, username: str = "", ip_address: str = "") -> int:
    """Clear lockouts for a username and/or an IP address (admin only; audited).

    Returns the number of lockout records cleared."""
    from axes.utils import reset

    if not (username or ip_address):
        raise InvalidInput("nothing_to_unlock", "Give a username or an IP address.")
    cleared = reset(username=username or None, ip=ip_address or None)
    security_event_record(
        kind=SecurityEventKind.UNLOCKED, username=username, ip_address=ip_address or None,
        actor=actor, detail=f"{cleared} lockout record(s) cleared",
    )  # fmt: skip
    return cleared


def token_failure_register(*, ip_address: str, path: str) -> int:
    """Count a failed token authentication from ``ip_address`` in the current window.

    Returns the failures in the window (cache-backed, shared by all processes)."""
    key = f"token-failures:{ip_address}"
    window = settings.MAHTQA_TOKEN_FAILURE_WINDOW_S
    try:
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
    except Exception as exc:  # noqa: BLE001 - the cache is down: fail open, still audited
        logger.warning("token-failure counter unavailable: %s", type(exc).__name__)
        count = 0
    security_event_record(kind=SecurityEventKind.TOKEN_FAILED, ip_address=ip_address, path=path)
    return count
