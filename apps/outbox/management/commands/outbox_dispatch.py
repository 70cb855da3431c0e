"""Publish due outbox messages once, or in a loop (a dispatcher outside the workers)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from apps.outbox.services import outbox_dispatch
from apps.outbox.worker import dispatch_forever


class Command(BaseCommand):
    help = "Publish due outbox messages (once, or --loop until interrupted)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true")

    def handle(self, *args, loop: bool, **options) -> None:
        if not loop:
            result = outbox_dispatch()
            self.stdout.write(
                f"published {result.published}, re-published {result.republished}, "
                f"failed {result.failed}, dead {result.dead}"
            )
            return
        stop = threading.Event()
        try:
            dispatch_forever(stop, poll_s=settings.MAHTQA_OUTBOX_POLL_S)
        except KeyboardInterrupt:
            stop.set()
