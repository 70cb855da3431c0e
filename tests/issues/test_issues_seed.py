from __future__ import annotations

import pytest
from django.core.management import call_command

from apps.issues.models import Issue

pytestmark = pytest.mark.django_db


def test_seed_demo_issues_is_idempotent_and_varied(engineer):
    call_command("seed_demo_issues")
    count = Issue.objects.count()
    assert count == 12
    call_command("seed_demo_issues")
    assert Issue.objects.count() == count
    assert set(Issue.objects.values_list("category", flat=True)) == {
        "environment", "data", "training", "evaluation", "deployment", "clinical",
    }  # fmt: skip
    assert Issue.objects.filter(status="reopened", recurrence_count=1).count() == 1
    assert Issue.objects.filter(occurrence_count__gt=1).count() >= 8
    assert Issue.objects.filter(assignee=engineer).exists()
