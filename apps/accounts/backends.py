"""Password authentication for people only: API-client accounts are token-only.

Refused here, at the backend, so no login page, admin login or stale session
can let a machine account in, whatever password an admin may have set.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
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

    def get_all_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        """The user's own and its groups' permissions in one query (Django asks two,
        and compiling its ORM queries costs more than running them): every API
        request checks one, so this was paid per study received."""
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                if user_obj.is_superuser:
                    cursor.execute(_ALL_PERMISSIONS_SQL)
                else:
                    cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app}.{codename}" for app, codename in cursor.fetchall()}
        return user_obj._perm_cache


# Table and column names come from the models, never from input; the user id is a parameter.
_ALL_PERMISSIONS_SQL = (
    f"SELECT ct.app_label, p.codename FROM {Permission._meta.db_table} p "  # noqa: S608
    f"JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id"
)


def _permissions_sql() -> str:
    """Permissions granted to a user directly or through a group (tables from the models)."""
    user_model = get_user_model()
    own = user_model.user_permissions.through._meta
    member = user_model.groups.through._meta
    granted = Group.permissions.through._meta
    return (  # names from the models, the user id is a parameter
        f"{_ALL_PERMISSIONS_SQL} WHERE p.id IN (SELECT permission_id FROM {own.db_table} "  # noqa: S608
        f"WHERE {own.get_field(user_model._meta.model_name).column} = %s) "
        f"OR p.id IN (SELECT g.permission_id FROM {granted.db_table} g "
        f"JOIN {member.db_table} m ON m.group_id = g.group_id "
        f"WHERE m.{member.get_field(user_model._meta.model_name).column} = %s)"
    )
