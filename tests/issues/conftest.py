from __future__ import annotations

import pytest

from apps.issues.services import issue_report


def _raise_and_trace(exc: BaseException):
    from mahtqa.reporting import exception_trace

    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001
        return exception_trace(caught)


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
