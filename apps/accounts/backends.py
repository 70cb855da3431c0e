"""Password authentication for people only: API-client accounts are token-only.

Refused here, at the backend, so no login page, admin login or stale session
can let a machine account in, whatever password an admin may have set.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef

from apps.accounts.choices import Role, SecurityEventKind


class PeopleOnlyBackend(ModelBackend):
    def authenticate(self, request: Any, username: Any = None, password: Any = None, **kw: Any):
        user = super().authenticate(request, username=username, password=password, **kw)
        if user is None and username:
            machine = get_user_model()._default_manager.filter(
                username=username, groups__name=Role.API_CLIENT.value
            )
            if machine.exists():  # audited: someone tried a password on a machine account
                from apps.accounts.services import security_event_record

                security_event_record(
                    kind=SecurityEventKind.PASSWORD_REFUSED, username=str(username),
                    path=getattr(request, "path", "") or "",
                    detail="API clients are token-only",
                )  # fmt: skip
        return user

    def user_can_authenticate(self, user: Any) -> bool:
        if getattr(user, "is_api_client", False):
            return False
        return super().user_can_authenticate(user)

    def get_user(self, user_id: Any) -> Any:
        """The session's user, unless it is (now) a machine account: one query, as before."""
        machine = Group.objects.filter(user=OuterRef("pk"), name=Role.API_CLIENT.value)
        try:
            user = (
                get_user_model()._default_manager.annotate(_machine=Exists(machine)).get(pk=user_id)
            )
        except get_user_model().DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
