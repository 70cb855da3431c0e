"""``GET /metrics``: the Prometheus scrape endpoint (apps.monitoring.metrics).

Served to clients in ``MAHTQA_METRICS_ALLOW`` (CIDRs; default loopback only) or
presenting ``Authorization: Bearer <MAHTQA_METRICS_TOKEN>`` (no default token).
Anything else is a 403 JSON error, never a login page. A wrong token counts as a
failed token authentication of its address (security events, the same per-address
limit as API tokens: past it, 429 before the token is even compared).
"""

from __future__ import annotations

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from apps.accounts.selectors import token_failures_recent
from apps.accounts.services import token_failure_register
from apps.core.exceptions import error_body
from apps.monitoring.metrics import metrics_ip_allowed, metrics_render, metrics_token_valid

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
FORBIDDEN_MESSAGE = (
    "Metrics are served to the networks in MAHTQA_METRICS_ALLOW or with the metrics bearer token."
)


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    ip = get_client_ip_address(request)
    forwarded = any(header in request.META for header in FORWARDING_HEADERS)
    if not metrics_ip_allowed(ip=ip, forwarded=forwarded):
        presented = _bearer(request)
        if presented is None:
            return JsonResponse(error_body("permission_denied", FORBIDDEN_MESSAGE), status=403)
        key = ip or "unknown"
        if token_failures_recent(ip_address=key) >= settings.MAHTQA_TOKEN_FAILURE_LIMIT:
            body = error_body("throttled", "Too many failed token authentications.")
            response = JsonResponse(body, status=429)
            response["Retry-After"] = str(settings.MAHTQA_TOKEN_FAILURE_WINDOW_S)
            return response
        if not metrics_token_valid(presented=presented):
            token_failure_register(ip_address=key, path=request.path)
            return JsonResponse(error_body("permission_denied", FORBIDDEN_MESSAGE), status=403)
    body, content_type = metrics_render()
    return HttpResponse(body, content_type=content_type)
