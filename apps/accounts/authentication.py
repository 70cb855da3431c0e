"""DRF authentication: ``Authorization: Token <key>``."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from apps.accounts.selectors import api_token_get_by_key
from apps.accounts.services import api_token_touch

KEYWORD = "Token"


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
        token = api_token_get_by_key(raw_key=raw_key)
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return KEYWORD
