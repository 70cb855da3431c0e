"""The dataset registry."""

from __future__ import annotations

import factory


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.Dataset"

    name = factory.Sequence(lambda n: f"dataset {n}")


class DatasetVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.DatasetVersion"

    dataset = factory.SubFactory(DatasetFactory)
    number = factory.Sequence(lambda n: n + 1)
    layout = "isbi"
    source_kind = "folder"
    root_path = "/nonexistent"
    root_label = "test"
    content_hash = "0" * 64


class DatasetFileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.DatasetFile"

    version = factory.SubFactory(DatasetVersionFactory)
    path = factory.Sequence(lambda n: f"images/{n:03d}.png")
    sha256 = "0" * 64
    size = 1


class DatasetImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.DatasetImage"

    version = factory.SubFactory(DatasetVersionFactory)
    key = factory.Sequence(lambda n: f"{n:03d}")
    file = factory.LazyAttribute(lambda o: f"images/{o.key}.png")
    fmt = "png"
    split = "train"


class ValidationRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.ValidationRun"

    version = factory.SubFactory(DatasetVersionFactory)


class ImageCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.ImageCheck"

    run = factory.SubFactory(ValidationRunFactory)
    image = factory.SubFactory(DatasetImageFactory)


class FindingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.Finding"

    run = factory.SubFactory(ValidationRunFactory)
    code = "image_truncated"
    severity = "critical"
    message = "cut short"


class SuspectAnnotationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.SuspectAnnotation"

    image = factory.SubFactory(DatasetImageFactory)
    version = factory.LazyAttribute(lambda o: o.image.version)
    annotator = "senior"
    landmark = "N"
    source = "test"
    evidence = 3.0


class ProfileRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "datasets.ProfileRun"

    version = factory.SubFactory(DatasetVersionFactory)
