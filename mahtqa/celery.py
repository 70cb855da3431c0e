"""The Celery app. Configuration lives in Django settings under CELERY_*."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mahtqa.settings.dev")

app = Celery("mahtqa")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_worker_steps() -> None:
    from apps.outbox.worker import OutboxDispatcher

    app.steps["worker"].add(OutboxDispatcher)


@celeryd_init.connect
def _name_this_worker(sender=None, **kwargs) -> None:
    from apps.outbox.worker import worker_key_set

    worker_key_set(str(sender))


_add_worker_steps()
