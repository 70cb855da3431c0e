import json

import pytest


@pytest.fixture
def model_dir(tmp_path, settings):
    settings.MAHTQA_MODEL_DIR = tmp_path
    return tmp_path


@pytest.fixture
def weights_file(model_dir):
    """A small dummy weights file with a manifest beside it."""
    path = model_dir / "maht-net-v1.pt"
    path.write_bytes(b"not really torch weights" * 100)
    (model_dir / "maht-net-v1.json").write_text(json.dumps({"name": "maht-net", "version": "1"}))
    return path
