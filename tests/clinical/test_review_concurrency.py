""" "Next case" under concurrency on PostgreSQL: SKIP LOCKED, never the same case twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction

from apps.accounts.choices import Role
from apps.clinical.choices import TaskStatus
from apps.clinical.models import ReviewTask
from apps.clinical.services.review import review_task_claim_next
from tests.clinical.review_factories import make_case

pytestmark = pytest.mark.django_db(transaction=True)


def _run_threads(target, n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)


def test_concurrent_reviewers_never_get_the_same_case(make_user):
    assert connection.vendor == "postgresql"
    tasks = [make_case(age=timedelta(minutes=60 - i)) for i in range(40)]
    users = [make_user(Role.RADIOLOGIST) for _ in range(10)]
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(users))

    def work(i: int) -> None:
        from django.db import connection as conn

        try:
            barrier.wait()
            while True:
                task = review_task_claim_next(user=users[i])
                if task is None:
                    return
                with lock:
                    claimed.append(task.pk)
                # finish it so the next call hands out a new case
                ReviewTask.objects.filter(pk=task.pk).update(status=TaskStatus.DONE)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            conn.close()

    _run_threads(work, len(users))
    assert errors == []
    assert len(claimed) == len(tasks)
    assert sorted(claimed) == sorted(t.pk for t in tasks)  # each exactly once


def test_a_locked_case_is_skipped_not_waited_for(make_user):
    first = make_case(age=timedelta(hours=2))
    second = make_case(age=timedelta(hours=1))
    holding = threading.Event()
    release = threading.Event()

    def hold(_: int) -> None:
        from django.db import connection as conn

        try:
            with transaction.atomic():
                list(ReviewTask.objects.select_for_update().filter(pk=first.pk))
                holding.set()
                release.wait(20)
        finally:
            conn.close()

    t = threading.Thread(target=hold, args=(0,))
    t.start()
    assert holding.wait(10)
    try:
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")  # a plain FOR UPDATE would fail here
        got = review_task_claim_next(user=make_user(Role.RADIOLOGIST))
    finally:
        release.set()
        t.join(20)
    assert got.pk == second.pk
