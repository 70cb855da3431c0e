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

from apps.accounts.choices import Role


class PeopleOnlyBackend(ModelBackend):
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
