"""Clinical reads, with the visibility rules of ARCHITECTURE.md in one place.

- API clients see only the studies they submitted (with their own identifiers).
- Clinical roles (view_phi) see every study, identified.
- Engineers (view_deidentified) see every study, de-identified only.
"""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from apps.clinical.models import Prediction, Review, Study
from apps.core.navigation import user_has_perm


def study_visibility(user) -> str | None:
    """ "owner", "phi", "deidentified", or None (no access)."""
    if not user.is_authenticated:
        return None
    if user_has_perm(user, "accounts.view_phi"):
        return "phi"
    if user_has_perm(user, "accounts.submit_study"):
        return "owner"
    if user_has_perm(user, "accounts.view_deidentified"):
        return "deidentified"
    return None


def study_list(*, user, status: str | None = None) -> QuerySet[Study]:
    visibility = study_visibility(user)
    qs = Study.objects.none() if visibility is None else Study.objects.all()
    if visibility == "owner":
        qs = qs.filter(submitted_by=user)
    if status:
        qs = qs.filter(status=status)
    return qs.select_related("submitted_by").prefetch_related(
        Prefetch(
            "predictions",
            queryset=Prediction.objects.select_related("model_version").order_by("-created_at"),
        ),
        Prefetch("reviews", queryset=Review.objects.select_related("reviewer")),
    )


def study_get(*, user, public_id) -> Study | None:
    return study_list(user=user).filter(public_id=public_id).first()


def study_latest_prediction(study: Study) -> Prediction | None:
    preds = list(study.predictions.all())
    return preds[0] if preds else None


def study_latest_review(study: Study) -> Review | None:
    reviews = list(study.reviews.all())
    return reviews[0] if reviews else None
