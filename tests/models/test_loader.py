import hashlib
import sys
import types

import pytest

from apps.models import loader
from apps.models.loader import ModelIntegrityError, predictor_for
from apps.models.services import model_version_register

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    loader.predictor_cache_clear()
    yield
    loader.predictor_cache_clear()


def test_changed_byte_is_refused_before_the_engine_is_touched(weights_file):
    mv = model_version_register(name="m", version="1", weights_path=str(weights_file))
    data = bytearray(weights_file.read_bytes())
    data[10] ^= 0x01
    weights_file.write_bytes(bytes(data))
    modules_before = set(sys.modules)
    with pytest.raises(ModelIntegrityError, match="refusing to load"):
        predictor_for(mv)
    # The engine (and torch) were never imported for this call.
    assert "mahtqa.engine.inference" not in set(sys.modules) - modules_before


def test_missing_file_is_an_integrity_error(weights_file):
    mv = model_version_register(name="m", version="1", weights_path=str(weights_file))
    weights_file.unlink()
    with pytest.raises(ModelIntegrityError, match="missing"):
        predictor_for(mv)


def test_engine_loaded_once_per_version(weights_file, monkeypatch):
    calls = []

    class FakePredictor:
        @classmethod
        def load(cls, weights_path, *, device="cpu", num_threads=None):
            calls.append((weights_path, device))
            return cls()

    fake = types.ModuleType("mahtqa.engine.inference")
    fake.LandmarkPredictor = FakePredictor
    monkeypatch.setitem(sys.modules, "mahtqa.engine.inference", fake)
    mv = model_version_register(name="m", version="1", weights_path=str(weights_file))
    first = predictor_for(mv)
    assert predictor_for(mv) is first
    assert calls == [(weights_file, "cpu")]
    assert mv.sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
