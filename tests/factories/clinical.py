"""Studies, predictions, review tasks, reviews, case events, the audit trail, routing policy.

Built directly (no engine, no intake): ``StudyFactory(files=True)`` also writes a real
DICOM instance to the "phi" storage and its de-identified copy to the default storage,
for the views that read the pixels (point the storages at a temporary folder first).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import factory
import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage, storages
from django.utils import timezone

from apps.clinical.choices import (
    AuditAction,
    CaseEventKind,
    EscalationLevel,
    Priority,
    ReviewOutcome,
    StudyStatus,
    TaskStatus,
)
from apps.clinical.models import (
    AuditEvent,
    CaseEvent,
    PhiDigest,
    Prediction,
    Review,
    ReviewTask,
    RoutingPolicy,
    Site,
    Study,
)
from apps.clinical.services.policy import DEFAULTS as POLICY_DEFAULTS
from mahtqa.imaging.deid import deidentify, pseudonymize_uid
from mahtqa.imaging.write import write_cr

from .accounts import ApiClientFactory, UserFactory
from .models import ModelVersionFactory

# Plausible landmark positions (pixels) on a 2000 x 2000 radiograph at 0.1 mm per pixel.
POINTS = {
    "S": (700.0, 800.0), "N": (1380.0, 720.0), "A": (1340.0, 1180.0), "B": (1300.0, 1520.0),
    "Pog": (1310.0, 1650.0), "Me": (1250.0, 1760.0), "Gn": (1290.0, 1720.0),
}  # fmt: skip
NAMES = {"S": "Sella", "N": "Nasion", "A": "Subspinale (A-point)", "B": "Supramentale (B-point)",
         "Pog": "Pogonion", "Me": "Menton", "Gn": "Gnathion"}  # fmt: skip
SIZE = 2000
SPACING = 0.1


def landmark_rows(confidence: float = 0.3, *, study: Study | None = None) -> list[dict]:
    """The seven landmarks as the engine writes them, scaled to ``study``'s image size
    and spacing (default: 2000 x 2000 at 0.1 mm)."""
    rows, cols = (study.rows, study.cols) if study else (SIZE, SIZE)
    sr, sc = (study.spacing_mm or (SPACING, SPACING)) if study else (SPACING, SPACING)
    out = []
    for abbr, (x, y) in POINTS.items():
        px, py = x * cols / SIZE, y * rows / SIZE
        out.append({"name": NAMES[abbr], "abbreviation": abbr, "x": px, "y": py,
                    "x_mm": round(px * sc, 2), "y_mm": round(py * sr, 2),
                    "confidence": confidence})  # fmt: skip
    return out


def _uid(root: str) -> str:
    return f"{root}.{uuid.uuid4().int % 10**30}"


class SiteFactory(factory.django.DjangoModelFactory):
    """A site as intake creates it: a keyed digest and the readable device."""

    class Meta:
        model = Site
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"site-{n:016x}")
    device = "Soredex CRANEX 3+"


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study
        skip_postgeneration_save = True

    submitted_by = factory.SubFactory(ApiClientFactory, token=False)
    site = factory.SubFactory(SiteFactory, key="default", device="")
    sop_instance_uid = factory.LazyFunction(lambda: _uid("1.2.826.0.1"))
    study_instance_uid = factory.LazyFunction(lambda: _uid("1.2.826.0.2"))
    deid_sop_instance_uid = factory.LazyFunction(lambda: _uid("2.25"))
    deid_study_instance_uid = factory.LazyFunction(lambda: _uid("2.25"))
    patient_pseudonym = factory.LazyFunction(lambda: f"P-{uuid.uuid4().hex[:10]}")
    original_file = factory.LazyFunction(lambda: f"x/{uuid.uuid4().hex}.dcm")
    deid_file = factory.LazyFunction(lambda: f"deid/x/{uuid.uuid4().hex}.dcm")
    file_sha256 = factory.LazyFunction(lambda: uuid.uuid4().hex * 2)
    file_size = 1000
    modality = "CR"
    rows = SIZE
    cols = SIZE
    transfer_syntax_uid = "1.2.840.10008.1.2.1"
    spacing_row_mm = SPACING
    spacing_col_mm = SPACING
    spacing_source = "PixelSpacing"
    status = StudyStatus.IN_REVIEW

    @factory.post_generation
    def files(self, create, extracted, **kwargs):
        """``files=True``: a real CR instance (``files__patient_name=...``) and its
        de-identified copy in the storages; names, sizes, hash and de-identified UIDs follow."""
        if not (create and extracted):
            return
        pixels = (np.random.default_rng(self.pk).random((self.rows, self.cols)) * 4000).astype(
            np.uint16
        )
        data = write_cr(
            pixels, spacing_mm=self.spacing_mm, modality=self.modality,
            sop_instance_uid=self.sop_instance_uid, study_instance_uid=self.study_instance_uid,
            patient_name=kwargs.get("patient_name", "DOE^JANE^MARIE"),
            patient_id=kwargs.get("patient_id", "PATIENT-4711"),
        )  # fmt: skip
        key = settings.PHI_PSEUDONYM_KEY.encode()
        name = f"factory/{self.public_id}.dcm"
        self.original_file = storages["phi"].save(name, ContentFile(data))
        self.deid_file = default_storage.save(
            f"deid/{name}", ContentFile(deidentify(data, key=key))
        )
        self.deid_sop_instance_uid = pseudonymize_uid(self.sop_instance_uid, key=key)
        self.deid_study_instance_uid = pseudonymize_uid(self.study_instance_uid, key=key)
        self.file_sha256 = hashlib.sha256(data).hexdigest()
        self.file_size = len(data)
        self.save()


class PredictionFactory(factory.django.DjangoModelFactory):
    """``PredictionFactory(study=s, confidence=0.9)``: landmarks fit ``s``'s image."""

    class Meta:
        model = Prediction

    class Params:
        confidence = 0.3

    study = factory.SubFactory(StudyFactory)
    model_version = factory.SubFactory(ModelVersionFactory)
    landmarks = factory.LazyAttribute(lambda o: landmark_rows(o.confidence, study=o.study))
    measurements = factory.LazyFunction(dict)
    findings = factory.LazyFunction(list)
    ood_score = 0.2
    routing = factory.LazyFunction(
        lambda: {"destination": "review", "priority": "normal", "reasons": [], "policy_version": 1}
    )


class ReviewTaskFactory(factory.django.DjangoModelFactory):
    """An open case in the radiologists' queue (study, its prediction, the task)."""

    class Meta:
        model = ReviewTask

    study = factory.SubFactory(StudyFactory, status=StudyStatus.IN_REVIEW)
    prediction = factory.SubFactory(PredictionFactory, study=factory.SelfAttribute("..study"))
    priority = Priority.NORMAL
    status = TaskStatus.OPEN
    level = EscalationLevel.RADIOLOGIST
    reasons = factory.LazyFunction(
        lambda: [
            {"code": "low_confidence", "severity": "info", "message": "A low", "landmark": "A"}
        ]  # fmt: skip
    )
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=24))


class ReviewFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Review

    study = factory.SubFactory(StudyFactory, status=StudyStatus.REVIEWED)
    prediction = factory.SubFactory(PredictionFactory, study=factory.SelfAttribute("..study"))
    reviewer = factory.SubFactory(UserFactory, role="radiologist")
    outcome = ReviewOutcome.ACCEPTED
    landmarks_before = factory.LazyAttribute(lambda o: o.prediction.landmarks)
    landmarks_after = factory.LazyFunction(list)
    time_spent_s = 12.0


class CaseEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CaseEvent

    study = factory.SubFactory(StudyFactory)
    kind = CaseEventKind.ROUTED
    actor = None
    level = EscalationLevel.RADIOLOGIST
    message = "Routed to review"


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditEvent

    actor = factory.SubFactory(UserFactory, role="radiologist")
    actor_username = factory.LazyAttribute(lambda o: o.actor.username if o.actor else "system")
    action = AuditAction.CASE_OPEN_PHI
    target_type = "study"
    target_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    ip = "203.0.113.9"
    details = factory.LazyFunction(dict)


def _next_policy_version() -> int:
    latest = RoutingPolicy.objects.order_by("-version").values_list("version", flat=True).first()
    return (latest or 0) + 1


class RoutingPolicyFactory(factory.django.DjangoModelFactory):
    """The next policy version, with the product's defaults unless told otherwise."""

    class Meta:
        model = RoutingPolicy

    version = factory.LazyFunction(_next_policy_version)
    min_confidence = POLICY_DEFAULTS["min_confidence"]
    min_confidence_per_landmark = factory.LazyFunction(
        lambda: dict(POLICY_DEFAULTS["min_confidence_per_landmark"])
    )
    max_ood_score = POLICY_DEFAULTS["max_ood_score"]
    review_policy = POLICY_DEFAULTS["review_policy"]
    urgent_severities = factory.LazyFunction(lambda: list(POLICY_DEFAULTS["urgent_severities"]))
    plausibility = factory.LazyFunction(dict)
    sla_minutes = factory.LazyFunction(lambda: dict(POLICY_DEFAULTS["sla_minutes"]))
    escalation_chain = factory.LazyFunction(
        lambda: [str(lv) for lv in POLICY_DEFAULTS["escalation_chain"]]
    )
    allowed_modalities = factory.LazyFunction(lambda: list(POLICY_DEFAULTS["allowed_modalities"]))
    note = "factory"


class PhiDigestFactory(factory.django.DjangoModelFactory):
    """A digest as the index stores it (of a made-up identifier, never a real one)."""

    class Meta:
        model = PhiDigest

    digest = factory.Sequence(lambda n: f"{n:064x}")


class ShadowPredictionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "clinical.ShadowPrediction"

    study = factory.SubFactory(StudyFactory)
    model_version = factory.SubFactory("tests.factories.models.ModelVersionFactory")
    landmarks = factory.LazyFunction(list)
    ood_score = 0.1
