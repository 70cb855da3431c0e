"""Every model has a factory that builds a valid row."""

from __future__ import annotations

import pytest
from django.apps import apps

import tests.factories as factories

pytestmark = pytest.mark.django_db

OURS = ("accounts", "clinical", "datasets", "issues", "models", "monitoring", "outbox")


def _factories() -> dict:
    found = {}
    for name in factories.__all__:
        obj = getattr(factories, name)
        model = getattr(getattr(obj, "_meta", None), "model", None)
        if model is not None:
            found[model] = obj
    return found


def test_every_model_of_ours_has_a_factory():
    models = {m for m in apps.get_models() if m._meta.app_label in OURS}
    missing = sorted(m.__name__ for m in models - set(_factories()))
    assert missing == []


@pytest.mark.parametrize("model", sorted(_factories(), key=lambda m: m.__name__),
                         ids=lambda m: m.__name__)  # fmt: skip
def test_each_factory_saves_a_row(model):
    row = _factories()[model]()
    assert model.objects.filter(pk=row.pk).exists()
