"""Dataset services (registration, validation, profiling, suspects, the issue hand-off)."""

from apps.datasets.services.profiling import profile_run_execute, profile_run_start
from apps.datasets.services.registration import (
    dataset_register_folder,
    dataset_register_zip,
    parse_spacing,
)
from apps.datasets.services.suspects import (
    annotations_zip,
    dataset_version_correct,
    predictions_from_model,
    suspect_decide,
    suspects_find,
    suspects_find_from_oof,
)
from apps.datasets.services.validation import (
    validation_run_execute,
    validation_run_fail,
    validation_run_progress,
    validation_run_requeue_stale,
    validation_run_start,
    validation_run_step,
)

__all__ = [
    "annotations_zip",
    "dataset_register_folder",
    "dataset_register_zip",
    "dataset_version_correct",
    "parse_spacing",
    "predictions_from_model",
    "profile_run_execute",
    "profile_run_start",
    "suspect_decide",
    "suspects_find",
    "suspects_find_from_oof",
    "validation_run_execute",
    "validation_run_fail",
    "validation_run_progress",
    "validation_run_requeue_stale",
    "validation_run_start",
    "validation_run_step",
]
