"""Re-index the identifiers of every stored original (digests only, no PHI stored)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.clinical.services.phi_index import phi_index_rebuild


class Command(BaseCommand):
    help = "Rebuild the keyed-hash PHI index from the stored originals (after a key change)."

    def handle(self, *args, **options) -> None:
        studies, digests = phi_index_rebuild()
        self.stdout.write(f"indexed {studies} studies ({digests} digests offered)")
