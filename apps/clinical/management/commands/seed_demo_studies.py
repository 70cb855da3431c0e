"""Submit a few demo radiographs through the real API path (view, parser, service).

Real cephalograms come from the shared ISBI subset when it is present (converted to
CR DICOM with their true pixel spacing; never copied into the repository), plus a
synthetic phantom and one radiograph without pixel spacing, so that the demo shows
released cases and both kinds of review. The worker processes them once it runs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand
from rest_framework.test import APIClient

from apps.accounts.models import User
from apps.accounts.services import api_token_create
from mahtqa.cephalometry.isbi import ISBI_SPACING_MM
from mahtqa.engine.phantoms import phantom_dicom
from mahtqa.imaging.write import write_cr

DEFAULT_DATA = Path(settings.BASE_DIR).parent / "shared" / "data" / "isbi2015-subset"
DEMO_CASES = ("003", "018", "039", "058", "081", "096")  # held-out cases of the bundled model


def _isbi_dicom(path: Path, index: int, *, spacing) -> bytes:
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    pixels = (image.astype(np.uint16) * 16).astype(np.uint16)  # 12-bit like a CR
    return write_cr(
        pixels,
        spacing_mm=spacing,
        patient_name=f"DEMO^PATIENT^{index:02d}",
        patient_id=f"DEMO-{index:04d}",
        sop_instance_uid=f"1.2.826.0.1.3680043.10.1299.{index}.1",
        study_instance_uid=f"1.2.826.0.1.3680043.10.1299.{index}",
    )


class Command(BaseCommand):
    help = "Submit demo radiographs through POST /api/v1/studies/ as the demo API client."

    def add_arguments(self, parser):
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
        parser.add_argument("--client", default="demo-pacs")

    def handle(self, *args, data: Path, client: str, **options):
        user = User.objects.filter(username=client).first()
        if user is None:
            self.stderr.write(f"No API client '{client}': run seed_demo_users first.")
            return
        _, key = api_token_create(user=user, name="seed_demo_studies")
        http = APIClient(SERVER_NAME="localhost")
        http.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        files: list[tuple[str, bytes]] = []
        if (data / "images").is_dir():
            for i, case in enumerate(DEMO_CASES):
                spacing = None if i == len(DEMO_CASES) - 1 else ISBI_SPACING_MM
                label = f"ISBI case {case}" + ("" if spacing else " without pixel spacing")
                files.append(
                    (label, _isbi_dicom(data / "images" / f"{case}.png", i, spacing=spacing))
                )
        else:
            self.stdout.write(f"{data} not found: phantoms only.")
        files.append(("synthetic phantom", phantom_dicom(seed=11)[0]))
        for label, payload in files:
            resp = http.post("/api/v1/studies/", data=payload, content_type="application/dicom")
            body = resp.json()
            state = body.get("status") or body.get("code")
            self.stdout.write(f"  {label}: HTTP {resp.status_code} {state} {body.get('id', '')}")
