"""DRF authentication: ``Authorization: Token <key>``."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.accounts.choices import SecurityEventKind
from apps.accounts.selectors import api_token_get_by_key, token_failures_recent
from apps.accounts.services import (
    api_token_touch,
    security_event_record,
    token_failure_register,
)

KEYWORD = "Token"


def _first_in_window(key: str, window: int) -> bool:
    try:
        return bool(cache.add(key, 1, timeout=window))
    except Exception:  # noqa: BLE001 - cache down: record it (rare: only when throttled)
        return True


class ApiTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Any):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # not ours: let other classes (session) try
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: use 'Token <key>'."
            )
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token.") from exc
        ip = get_client_ip_address(getattr(request, "_request", request)) or "unknown"
        limit = settings.MAHTQA_TOKEN_FAILURE_LIMIT
        window = settings.MAHTQA_TOKEN_FAILURE_WINDOW_S
        if token_failures_recent(ip_address=ip) >= limit:
            # Too many bad tokens from this address: refuse before even looking the
            # key up, so guessing costs the attacker time, not us a query.
            if _first_in_window(f"token-throttled:{ip}", window):
                security_event_record(
                    kind=SecurityEventKind.TOKEN_THROTTLED, ip_address=ip, path=request.path
                )
            raise exceptions.Throttled(
                wait=window, detail="Too many failed token authentications from this address."
            )
        token = api_token_get_by_key(raw_key=raw_key)
        if token is None or not token.user.is_active:
            token_failure_register(ip_address=ip, path=request.path)
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return KEYWORD
