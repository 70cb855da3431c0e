"""Helpers shared by the clinical pages."""

from __future__ import annotations

from django.http import HttpRequest

PHI_OR_DEID = ("accounts.view_phi", "accounts.view_deidentified")


def client_ip(request: HttpRequest) -> str | None:
    """The peer address. Behind a trusted proxy, configure it to set REMOTE_ADDR."""
    return request.META.get("REMOTE_ADDR") or None
