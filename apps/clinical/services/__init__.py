"""Clinical writes. Views and tasks call these; they never touch models directly."""

from apps.clinical.services.intake import study_receive
from apps.clinical.services.pipeline import (
    study_fail,
    study_infer,
    study_requeue_stuck,
    study_retry,
)
from apps.clinical.services.policy import routing_policy_current, routing_policy_update

__all__ = [
    "routing_policy_current",
    "routing_policy_update",
    "study_fail",
    "study_infer",
    "study_receive",
    "study_requeue_stuck",
    "study_retry",
]
