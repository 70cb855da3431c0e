"""The Celery app. Configuration lives in Django settings under CELERY_*."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.dev")

app = Celery("mahtqa")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_worker_steps() -> None:
    from apps.outbox.worker import OutboxDispatcher

    app.steps["worker"].add(OutboxDispatcher)


_add_worker_steps()
