"""Load the engine once per process per model version, after checking its hash.

Workers call :func:`predictor_for`; the engine (torch) is imported lazily so
web processes never pay for it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings

from apps.models.files import sha256_file, weights_path_resolve
from apps.models.models import ModelVersion

if TYPE_CHECKING:  # pragma: no cover
    from mahtqa.engine.inference import LandmarkPredictor

logger = logging.getLogger(__name__)

_CACHE: dict[tuple[int, str], Any] = {}
_LOCK = threading.Lock()


class ModelIntegrityError(RuntimeError):
    """The weights on disk are missing or are not the registered ones."""


def predictor_for(model_version: ModelVersion) -> LandmarkPredictor:
    key = (model_version.pk, model_version.sha256)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        path = weights_path_resolve(model_version.weights_path)
        if not path.is_file():
            raise ModelIntegrityError(f"Weights of {model_version} missing at {path}.")
        actual = sha256_file(path)
        if actual != model_version.sha256:
            raise ModelIntegrityError(
                f"Weights of {model_version} at {path} have sha256 {actual[:12]}…, "
                f"registered {model_version.sha256[:12]}…: refusing to load."
            )
        from mahtqa.engine.inference import EngineError, LandmarkPredictor

        try:
            predictor = LandmarkPredictor.load(
                path, device=settings.MAHTQA_DEVICE, num_threads=settings.MAHTQA_NUM_THREADS
            )
        except EngineError as exc:  # e.g. ONNX files beside the weights that do not match
            raise ModelIntegrityError(f"{model_version}: {exc}") from exc
        _CACHE[key] = predictor
        logger.info(
            "loaded model %s (sha256 %s…, %s)", model_version, actual[:12], predictor.runtime
        )
        return predictor


def predictor_cache_clear() -> None:
    with _LOCK:
        _CACHE.clear()
