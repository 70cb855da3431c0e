"""Reads for accounts."""

from __future__ import annotations

import hmac
import logging
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet

from apps.accounts.keys import PREFIX_LENGTH, api_key_hash
from apps.accounts.models import ApiToken, SecurityEvent

logger = logging.getLogger(__name__)


def api_token_get_by_key(*, raw_key: str) -> ApiToken | None:
    """The active token for ``raw_key``, or None. Constant-time hash comparison."""
    if len(raw_key) < PREFIX_LENGTH:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=raw_key[:PREFIX_LENGTH]).first()
    expected = token.key_hash if token else "0" * 64
    matches = hmac.compare_digest(expected, api_key_hash(raw_key=raw_key))
    if token is None or not matches or token.revoked_at is not None:
        return None
    return token


def api_token_list(*, user=None) -> QuerySet[ApiToken]:
    qs = ApiToken.objects.select_related("user")
    return qs.filter(user=user) if user is not None else qs


def token_failures_recent(*, ip_address: str) -> int:
    """Failed token authentications from ``ip_address`` in the current window.

    Fails open: a cache that is down must not stop every API client (intake needs
    neither the cache nor the broker); the outage is logged."""
    try:
        return int(cache.get(f"token-failures:{ip_address}") or 0)
    except Exception as exc:  # noqa: BLE001 - any cache backend error
        logger.warning("token-failure counter unavailable: %s", type(exc).__name__)
        return 0


def security_event_counts(*, since: datetime) -> dict[str, int]:
    """Security events since ``since``, per kind."""
    return dict(
        SecurityEvent.objects.filter(created_at__gte=since)
        .values_list("kind")
        .annotate(n=Count("id"))
        .order_by()
    )


def api_token_stale_count(*, now: datetime, days: int) -> int:
    """Live tokens unused for ``days`` (or never used and older than that)."""
    cutoff = now - timedelta(days=days)
    return (
        ApiToken.objects.filter(revoked_at__isnull=True)
        .filter(Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff))
        .count()
    )
