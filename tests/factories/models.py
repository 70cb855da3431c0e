"""The model registry."""

from __future__ import annotations

from pathlib import Path

import factory

from apps.models.files import sha256_file
from apps.models.models import ModelVersion


class ModelVersionFactory(factory.django.DjangoModelFactory):
    """A registered model version. ``weights_file=<path>`` registers that real file (absolute
    path, its sha256); without it the path is a name that does not exist."""

    class Meta:
        model = ModelVersion

    class Params:
        weights_file = None

    name = "maht-net"
    version = factory.Sequence(lambda n: f"1.{n}")
    weights_path = factory.LazyAttributeSequence(
        lambda o, n: str(o.weights_file) if o.weights_file else f"maht-net-{n}.pt"
    )
    sha256 = factory.LazyAttribute(
        lambda o: sha256_file(Path(o.weights_file)) if o.weights_file else "0" * 64
    )
    manifest = factory.LazyFunction(dict)


class TrainingRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "models.TrainingRun"

    name = factory.Sequence(lambda n: f"run {n}")


class RunMetricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "models.RunMetric"

    run = factory.SubFactory(TrainingRunFactory)
    step = factory.Sequence(lambda n: n)
    name = "train_loss"
    value = 1.0


class RunFindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "models.RunFinding"

    run = factory.SubFactory(TrainingRunFactory)
    code = "plateau"
    severity = "warning"
    start_step = 10
    end_step = 50
    statistic = "relative decrease"
    message = "The loss stopped falling."


class EvaluationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "models.EvaluationRun"

    model_version = factory.SubFactory(ModelVersionFactory)
    dataset_version = factory.SubFactory("tests.factories.datasets.DatasetVersionFactory")
    split = "test"


class ReleaseGateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "models.ReleaseGate"
