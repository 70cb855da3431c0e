"""Scale: 100,000 studies and 10,000 open tasks; the queue page and "next case" keep a
fixed number of queries (the same as with a handful of tasks)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.accounts.choices import Role
from apps.clinical.choices import TaskStatus
from apps.clinical.models import ReviewTask, Study
from tests.clinical.review_factories import make_case, seed_scale

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _queries(client, method: str, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(url)
    assert response.status_code in (200, 302)
    return len(ctx.captured_queries)


def test_queue_and_next_case_queries_do_not_grow_with_the_queue(client_for):
    small_client = client_for(Role.RADIOLOGIST)
    for _ in range(3):
        make_case()
    small_queue = _queries(small_client, "get", reverse("clinical:review_queue"))
    small_next = _queries(small_client, "post", reverse("clinical:next_case"))

    seed_scale(n_studies=100_000, n_tasks=10_000)
    assert Study.objects.count() >= 100_000
    assert ReviewTask.objects.filter(status=TaskStatus.OPEN).count() >= 10_000
    big_client = client_for(Role.RADIOLOGIST)
    big_queue = _queries(big_client, "get", reverse("clinical:review_queue"))
    page = big_client.get(reverse("clinical:review_queue")).content.decode()
    assert page.count('class="prio-') == 50  # one page, not the whole queue
    big_next = _queries(big_client, "post", reverse("clinical:next_case"))
    assert big_queue == small_queue
    assert big_next == small_next
    claimed = ReviewTask.objects.get(status=TaskStatus.CLAIMED, claimed_by=big_client.user)
    assert claimed.priority == "urgent"  # urgent first, even among 10,000
