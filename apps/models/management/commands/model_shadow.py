"""python manage.py model_shadow VERSION --user ADMIN [--off] [--backfill N] [--skip-active]

Start (or stop) shadow mode for a registered version, as an admin (audited). Idempotent:
a version already in the asked state is left alone. ``make demo`` runs
``model_shadow mahtnet@1.0.0 --user admin --skip-active`` so the demo worker fills shadow
predictions of v1 beside the active v2 (the comparison page then has cases)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.models.selectors import model_version_find
from apps.models.services.shadow import model_version_shadow_set


class Command(BaseCommand):
    help = "Start or stop shadow mode for a model version (id or name@version)."

    def add_arguments(self, parser):
        parser.add_argument("version", help="an id or name@version")
        parser.add_argument("--user", required=True, help="an admin's username (audited)")
        parser.add_argument("--off", action="store_true", help="stop shadow mode")
        parser.add_argument(
            "--backfill", type=int, default=50, help="also run on the N latest finished studies"
        )
        parser.add_argument(
            "--skip-active",
            action="store_true",
            help="the active version is left as it is (exit 0) instead of an error",
        )

    def handle(self, *args, version: str, user: str, off: bool, backfill: int, **options):
        try:
            mv = model_version_find(ref=version)
        except ValueError:
            raise CommandError(f"{version!r} is neither an id nor name@version.") from None
        if mv is None:
            raise CommandError(f"No model version {version}.")
        actor = get_user_model().objects.filter(username=user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user {user!r}.")
        if mv.is_active and not off and options["skip_active"]:
            self.stdout.write(f"{mv} is the active version: not put in shadow mode.")
            return
        if mv.in_shadow == (not off):
            self.stdout.write(f"{mv} is already {'in' if mv.in_shadow else 'out of'} shadow mode.")
            return
        try:
            mv = model_version_shadow_set(
                model_version=mv, on=not off, user=actor, backfill=0 if off else backfill
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except PermissionDenied as exc:
            raise CommandError(f"{user}: {exc}") from exc
        self.stdout.write(
            f"{mv} {'runs in shadow mode' if mv.in_shadow else 'left shadow mode'}"
            + ("" if off else f" (queued on up to {backfill} recent studies)")
            + "."
        )
