"""The confidence model learns which features predict large errors."""

from __future__ import annotations

import numpy as np

from mahtqa.cephalometry.metrics import auroc
from mahtqa.engine.confidence import FEATURES, ConfidenceModel


def _synthetic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    err = rng.gamma(2.0, 0.8, size=n)
    feats = np.column_stack(
        [
            err * rng.uniform(0.5, 1.5, n),  # coarse-fine disagreement grows with error
            err * rng.uniform(0.2, 0.6, n),  # shift disagreement grows with error
            np.clip(1.0 - 0.1 * err + rng.normal(0, 0.05, n), 0, 1),  # peak falls
            rng.uniform(0.5, 1.0, n),  # uninformative
            rng.uniform(0.3, 1.0, n),  # uninformative
        ]
    )
    return feats, rng.integers(0, 7, n), err


def test_fitted_confidence_ranks_errors_on_unseen_data():
    feats, lm, err = _synthetic(400, 0)
    model = ConfidenceModel.fit(feats, lm, err <= 2.0)
    feats2, lm2, err2 = _synthetic(400, 1)
    conf = model.predict(feats2, lm2)
    assert ((conf >= 0) & (conf <= 1)).all()
    assert auroc(1 - conf, err2 > 2.0) > 0.85
    # higher disagreement, lower confidence
    low = model.predict(np.array([[0.1, 0.05, 0.95, 0.9, 0.5]]), np.array([0]))
    high = model.predict(np.array([[8.0, 3.0, 0.4, 0.9, 0.5]]), np.array([0]))
    assert low[0] > 0.8 > 0.2 > high[0]


def test_confidence_model_round_trips_through_json_dict():
    feats, lm, err = _synthetic(200, 2)
    model = ConfidenceModel.fit(feats, lm, err <= 2.0)
    data = model.to_dict()
    assert data["features"] == list(FEATURES)
    again = ConfidenceModel.from_dict(__import__("json").loads(__import__("json").dumps(data)))
    assert np.allclose(again.predict(feats, lm), model.predict(feats, lm))
