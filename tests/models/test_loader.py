"""The loader with the real bundled model: hash checked before the engine, one load per version."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from apps.models import loader
from apps.models.loader import ModelIntegrityError, predictor_for
from apps.models.models import ModelVersion
from apps.models.services import model_version_register
from mahtqa.engine.phantoms import make_phantom

pytestmark = pytest.mark.django_db
BUNDLED = Path(__file__).resolve().parents[2] / "mahtqa" / "engine" / "bundled" / "mahtnet-v1.pt"


@pytest.fixture(autouse=True)
def _clear_cache():
    loader.predictor_cache_clear()
    yield
    loader.predictor_cache_clear()


@pytest.fixture
def bundled_copy(model_dir) -> Path:
    """The bundled weights and their manifest, copied: tests change bytes of the copy."""
    for suffix in (".pt", ".json"):
        shutil.copyfile(BUNDLED.with_suffix(suffix), model_dir / f"mahtnet-v1{suffix}")
    return model_dir / "mahtnet-v1.pt"


def test_changed_byte_is_refused_before_the_engine_is_touched(bundled_copy):
    mv = model_version_register(name="m", version="1", weights_path=str(bundled_copy))
    data = bytearray(bundled_copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    bundled_copy.write_bytes(bytes(data))
    modules_before = set(sys.modules)
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        predictor_for(mv)
    # The engine (and torch) were never imported for this call.
    assert "mahtqa.engine.inference" not in set(sys.modules) - modules_before


def test_missing_file_is_an_integrity_error(bundled_copy):
    mv = model_version_register(name="m", version="1", weights_path=str(bundled_copy))
    bundled_copy.unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        predictor_for(mv)


def test_the_real_engine_is_loaded_once_per_version_and_predicts(bundled_copy):
    from mahtqa.engine.inference import LandmarkPredictor

    mv = model_version_register(name="m", version="1", weights_path=str(bundled_copy))
    assert mv.sha256 == hashlib.sha256(BUNDLED.read_bytes()).hexdigest()
    first = predictor_for(mv)
    assert type(first) is LandmarkPredictor
    assert (first.name, first.version) == ("mahtnet", "1.0.0")
    assert predictor_for(mv) is first
    assert predictor_for(ModelVersion.objects.get(pk=mv.pk)) is first  # same (id, sha256)
    other = model_version_register(name="m", version="2", weights_path=str(bundled_copy))
    assert predictor_for(other) is not first  # another version: loaded on its own

    phantom = make_phantom(seed=3)
    prediction = first.predict(phantom.image, spacing_mm=phantom.spacing_mm)
    assert [lm.abbreviation for lm in prediction.landmarks] == [
        "S",
        "N",
        "A",
        "B",
        "Pog",
        "Me",
        "Gn",
    ]
    assert (prediction.model_name, prediction.model_version) == ("mahtnet", "1.0.0")
    height, width = phantom.image.shape
    for lm in prediction.landmarks:
        assert 0 <= lm.x < width, lm
        assert 0 <= lm.y < height, lm
        assert 0.0 <= lm.confidence <= 1.0, lm
