"""Rate limit for API clients, per token (scope ``api_client``, MAHTQA_API_THROTTLE)."""

from __future__ import annotations

import logging

from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.models import ApiToken

logger = logging.getLogger(__name__)


class ApiTokenRateThrottle(SimpleRateThrottle):
    scope = "api_client"

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None  # sessions are people; not throttled here
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}

    def allow_request(self, request, view) -> bool:
        """Fails open when the cache is down: a rate limit must not stop intake."""
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # noqa: BLE001 - any cache backend error
            logger.warning("API rate limit unavailable: %s", type(exc).__name__)
            return True
