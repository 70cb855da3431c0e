"""Rate limit for API clients, per token (scope ``api_client``, MAHTQA_API_THROTTLE)."""

from __future__ import annotations

from rest_framework.throttling import SimpleRateThrottle

from apps.accounts.models import ApiToken


class ApiTokenRateThrottle(SimpleRateThrottle):
    scope = "api_client"

    def get_cache_key(self, request, view) -> str | None:
        if not isinstance(request.auth, ApiToken):
            return None  # sessions are people; not throttled here
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
