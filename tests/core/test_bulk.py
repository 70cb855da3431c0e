"""rows_insert: one COPY on PostgreSQL, the same rows as bulk_create would store."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from apps.core.bulk import rows_insert
from apps.datasets.models import Finding, ImageCheck
from tests.factories.datasets import DatasetImageFactory, ValidationRunFactory

pytestmark = pytest.mark.django_db

FIELDS = ("run_id", "image_id", "code", "severity", "landmark", "annotator", "message", "details")


def test_rows_arrive_with_text_json_nulls_and_awkward_characters():
    run = ValidationRunFactory()
    image = DatasetImageFactory(version=run.version)
    awkward = "tab\there, newline\nthere, backslash \\ and quote ' \" and ü"
    rows = [
        (run.pk, image.pk, "image_missing", "critical", "", "", awkward, {}),
        (run.pk, None, "split_small", "info", "S", "junior", "m2", {"x": 1.5, "l": [1, None]}),
    ]
    assert rows_insert(model=Finding, fields=FIELDS, rows=rows) == 2
    stored = list(Finding.objects.filter(run=run).order_by("id"))
    assert [f.message for f in stored] == [awkward, "m2"]
    assert stored[0].image_id == image.pk
    assert stored[1].image_id is None
    assert stored[1].details == {"x": 1.5, "l": [1, None]}
    assert stored[1].landmark == "S"


def test_booleans_numbers_and_null_numbers():
    run = ValidationRunFactory()
    a, b = DatasetImageFactory(version=run.version), DatasetImageFactory(version=run.version)
    fields = ("run_id", "image_id", "readable", "sha256", "width", "height", "quality_score",
              "metrics", "dhash", "distances", "unit")  # fmt: skip
    rows_insert(
        model=ImageCheck,
        fields=fields,
        rows=[
            (run.pk, a.pk, True, "ab" * 32, 640, 800, 9.5, {"contrast": 0.7}, "f" * 64,
             {"a|b": [0.1, None]}, "mm"),
            (run.pk, b.pk, False, "", None, None, None, {}, "", {}, "px"),
        ],
    )  # fmt: skip
    first, second = ImageCheck.objects.filter(run=run).order_by("image_id")
    assert (first.readable, first.width, first.quality_score) == (True, 640, 9.5)
    assert first.distances == {"a|b": [0.1, None]}
    assert (second.readable, second.width, second.quality_score) == (False, None, None)


def test_a_bad_row_stores_nothing_of_the_batch():
    run = ValidationRunFactory()
    image = DatasetImageFactory(version=run.version)
    rows = [
        (run.pk, image.pk, "ok", "info", "", "", "m", {}),
        (run.pk, None, None, "info", "", "", "m", {}),
    ]
    with pytest.raises(IntegrityError), transaction.atomic():  # code is NOT NULL
        rows_insert(model=Finding, fields=FIELDS, rows=rows)
    assert Finding.objects.filter(run=run).count() == 0


def test_it_is_one_copy_not_an_insert_per_row_on_postgresql(django_assert_num_queries):
    """The COPY goes to psycopg directly: no statement through Django's cursor wrapper
    (so query-count baselines do not see it), and every row is stored."""
    assert connection.vendor == "postgresql"
    run = ValidationRunFactory()
    rows = [(run.pk, None, "c", "info", "", "", f"m{i}", {}) for i in range(500)]
    with django_assert_num_queries(0):
        rows_insert(model=Finding, fields=FIELDS, rows=rows)
    assert Finding.objects.filter(run=run).count() == 500
