"""Facts about the request shared by every app's pages (the client address for audits)."""

from __future__ import annotations

from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. Behind a trusted proxy, configure it to set REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR") or None
