"""Small helpers shared by tests (no fixtures here)."""

from __future__ import annotations

import importlib
from contextlib import contextmanager

from django.test import Client


def password_login(client: Client, username: str, password: str, *, path: str = "/accounts/login/"):
    """Sign in through the real login page (django-axes and the auth backends run).

    Returns the response; signed in when it is a 302 and the session holds a user."""
    response = client.post(path, {"username": username, "password": password})
    return response


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def outbox_run() -> int:
    """Run every live outbox message in this process, through the real Celery tasks.

    What a worker's dispatcher and the worker would do, for tests that do not start
    a worker (Celery's ``apply`` runs the task here, signals and retries included).
    Returns the number of messages run."""
    from apps.outbox.choices import LIVE_STATUSES
    from apps.outbox.models import OutboxMessage
    from mahtqa.celery import app

    ran = 0
    for _ in range(10):  # a task may enqueue more work
        batch = list(OutboxMessage.objects.filter(status__in=LIVE_STATUSES).order_by("id"))
        if not batch:
            break
        for message in batch:
            importlib.import_module(message.task.rsplit(".", 1)[0])  # registers the task
            app.tasks[message.task].apply(
                kwargs=message.kwargs, task_id=f"outbox-{message.pk}-{message.publish_count + 1}"
            )
            ran += 1
    return ran


@contextmanager
def delivered():
    """``with delivered(): ...`` runs the outbox when the block ends (see outbox_run)."""
    yield
    outbox_run()
