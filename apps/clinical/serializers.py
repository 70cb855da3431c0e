"""API input/output shapes of studies."""

from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from apps.clinical.choices import StudyStatus
from apps.clinical.models import Study
from apps.clinical.selectors import study_latest_prediction, study_latest_review


class LandmarkSerializer(serializers.Serializer):
    name = serializers.CharField()
    abbreviation = serializers.CharField()
    x = serializers.FloatField(help_text="column in the submitted image's pixel grid")
    y = serializers.FloatField(help_text="row in the submitted image's pixel grid")
    x_mm = serializers.FloatField(allow_null=True)
    y_mm = serializers.FloatField(allow_null=True)
    confidence = serializers.FloatField(allow_null=True, help_text="in [0, 1]")


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["info", "warning", "high"])
    message = serializers.CharField()
    landmarks = serializers.ListField(child=serializers.CharField())


class ReviewOutSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    reviewed_at = serializers.DateTimeField()
    reason = serializers.CharField()
    landmarks = LandmarkSerializer(many=True, help_text="the final landmarks")


class StudyCreateOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=StudyStatus.choices)
    url = serializers.CharField()


class StudyOutputSerializer(serializers.Serializer):
    """One study; identifiers depend on who asks (``context['visibility']``)."""

    id = serializers.UUIDField()
    url = serializers.CharField()
    status = serializers.ChoiceField(choices=StudyStatus.choices)
    error = serializers.DictField(allow_null=True)
    received_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    sop_instance_uid = serializers.CharField(
        help_text="original UID (owner and clinicians) or de-identified UID (engineers)"
    )
    study_instance_uid = serializers.CharField()
    patient_pseudonym = serializers.CharField()
    modality = serializers.CharField()
    rows = serializers.IntegerField()
    cols = serializers.IntegerField()
    pixel_spacing_mm = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    pixel_spacing_source = serializers.CharField()
    model_version = serializers.DictField(allow_null=True)
    landmarks = LandmarkSerializer(many=True, allow_null=True)
    measurements = serializers.DictField(allow_null=True)
    findings = FindingSerializer(many=True, allow_null=True)
    ood_score = serializers.FloatField(allow_null=True)
    routing = serializers.DictField(allow_null=True)
    review = ReviewOutSerializer(allow_null=True)


def study_url(study: Study, request=None) -> str:
    path = reverse("clinical-api:study-detail", kwargs={"public_id": study.public_id})
    return request.build_absolute_uri(path) if request is not None else path


def study_payload(study: Study, *, visibility: str, request=None) -> dict:
    """Plain data for StudyOutputSerializer (visibility: owner | phi | deidentified)."""
    identified = visibility in ("owner", "phi")
    prediction = study_latest_prediction(study)
    review = study_latest_review(study)
    data = {
        "id": study.public_id,
        "url": study_url(study, request),
        "status": study.status,
        "error": {"code": study.error_code, "message": study.error_message}
        if study.status == StudyStatus.FAILED
        else None,
        "received_at": study.received_at,
        "finished_at": study.finished_at,
        "sop_instance_uid": study.sop_instance_uid if identified else study.deid_sop_instance_uid,
        "study_instance_uid": study.study_instance_uid
        if identified
        else study.deid_study_instance_uid,
        "patient_pseudonym": study.patient_pseudonym,
        "modality": study.modality,
        "rows": study.rows,
        "cols": study.cols,
        "pixel_spacing_mm": list(study.spacing_mm) if study.spacing_mm else None,
        "pixel_spacing_source": study.spacing_source,
        "model_version": None,
        "landmarks": None,
        "measurements": None,
        "findings": None,
        "ood_score": None,
        "routing": None,
        "review": None,
    }
    if prediction is not None:
        mv = prediction.model_version
        data.update(
            model_version={"name": mv.name, "version": mv.version, "sha256": mv.sha256},
            landmarks=prediction.landmarks,
            measurements=prediction.measurements,
            findings=prediction.findings,
            ood_score=prediction.ood_score,
            routing=prediction.routing,
        )
    if review is not None:
        data["review"] = {
            "outcome": review.outcome,
            "reviewed_at": review.created_at,
            "reason": review.reason,
            "landmarks": review.landmarks_after or review.landmarks_before,
        }
    return data
