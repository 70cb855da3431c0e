"""Security events from Django's and django-axes' signals (the audit trail)."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_ip_address
from axes.signals import user_locked_out
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from apps.accounts.choices import SecurityEventKind
from apps.accounts.services import security_event_record


def _ip(request: Any) -> str | None:
    return get_client_ip_address(request) if request is not None else None


@receiver(user_login_failed, dispatch_uid="accounts-login-failed")
def _login_failed(sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
    security_event_record(
        kind=SecurityEventKind.LOGIN_FAILED, username=str(credentials.get("username") or ""),
        ip_address=_ip(request), path=getattr(request, "path", "") or "",
    )  # fmt: skip


@receiver(user_locked_out, dispatch_uid="accounts-locked-out")
def _locked_out(sender: Any, request: Any = None, username: str = "", ip_address: str = "",
                **kwargs: Any) -> None:  # fmt: skip
    security_event_record(
        kind=SecurityEventKind.LOCKED_OUT, username=username or "",
        ip_address=ip_address or _ip(request), path=getattr(request, "path", "") or "",
    )  # fmt: skip
