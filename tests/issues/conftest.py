from __future__ import annotations

import pytest

from apps.issues.services import issue_report


def _raise_and_trace(exc: BaseException):
    from mahtqa.reporting import exception_trace

    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001
        return exception_trace(caught)


@pytest.fixture(autouse=True)
def _roles(db):
    """Transactional tests flush the tables, data-migration groups included: restore them."""
    from django.contrib.auth.models import Group, Permission

    from apps.accounts.roles import ROLE_PERMISSIONS

    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=str(role))
        perms = Permission.objects.filter(
            content_type__app_label="accounts", codename__in=codenames
        )
        group.permissions.set(perms)


@pytest.fixture
def report(db):
    """``report(title=..., **overrides)`` -> (issue, created), via the service."""

    def _report(**kwargs):
        fields = {"title": "Loader crashed", "category": "data", "severity": "high"}
        fields.update(kwargs)
        return issue_report(**fields)

    return _report


@pytest.fixture
def trace_of():
    return _raise_and_trace
