"""Helpers shared by the clinical pages."""

from __future__ import annotations

from apps.core.requests import client_ip

__all__ = ["PHI_OR_DEID", "client_ip"]

PHI_OR_DEID = ("accounts.view_phi", "accounts.view_deidentified")
