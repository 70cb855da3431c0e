"""Worker side: a task published from the outbox marks its row done when it has run.

Not when it starts: a worker killed between the start and the task's own commit
(seen in tests/faults) would leave a row marked done and its study queued until the
lease. Until the task returns, the row is re-published after its window; the tasks
are idempotent, so a copy that arrives meanwhile does nothing."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import task_postrun
from django.db import DatabaseError

from apps.outbox.services import outbox_mark_consumed

logger = logging.getLogger(__name__)


@task_postrun.connect(dispatch_uid="outbox-mark-consumed")
def _mark_consumed(sender: Any = None, task_id: str = "", **kwargs: Any) -> None:
    if not (task_id or "").startswith("outbox-"):
        return
    try:
        outbox_mark_consumed(task_id=task_id)
    except DatabaseError as exc:  # the task itself will meet the database problem
        logger.warning("outbox: could not mark %s consumed: %s", task_id, type(exc).__name__)
