"""Annotation errors found by the model: finding, deciding (audited), correcting."""

from __future__ import annotations

import io
import json
import zipfile
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from apps.clinical.models import AuditEvent
from apps.core.errors import Conflict, InvalidInput
from apps.datasets.models import SuspectAnnotation
from apps.datasets.services import (
    annotations_zip,
    dataset_register_folder,
    dataset_version_correct,
    predictions_from_model,
    suspect_decide,
    suspects_find,
    suspects_find_from_oof,
)
from mahtqa.cephalometry.isbi import read_seven
from mahtqa.datasets.suspects import Annotated, find_suspects
from tests.datasets.conftest import ISBI, ISBI_SPACING, defect_shift_senior, needs_isbi

pytestmark = [pytest.mark.django_db, needs_isbi]

CASES = ["001", "002", "003", "004"]


def _oof(dest: Path, cases: list[str]) -> None:
    """Predictions that agree with the junior annotator (within 0.3 px)."""
    rng = np.random.default_rng(1)
    rows = [
        {
            "case_id": c,
            "points": (
                read_seven(ISBI / "annotations" / "junior" / f"{c}.txt")
                + rng.normal(0, 0.3, (7, 2))
            ).tolist(),
        }
        for c in cases
    ]
    dest.write_text(json.dumps({"cases": rows}))


@pytest.fixture
def shifted(make_isbi, dataset_roots):
    folder = make_isbi(
        "shifted", CASES, [partial(defect_shift_senior, case="002", line=1, dx=50.0)]
    )
    _oof(dataset_roots / "oof.json", CASES)
    return dataset_register_folder(path=folder, name="Shifted", spacing=ISBI_SPACING)


def test_the_shifted_annotation_is_the_top_suspect(shifted):
    n = suspects_find_from_oof(version=shifted, path="oof.json")
    top = shifted.suspects.order_by("-evidence").first()
    assert n >= 1
    assert (top.image.key, top.annotator, top.landmark, top.source) == (
        "002",
        "senior",
        "N",
        "oof:oof.json",
    )
    assert top.distances["self_model"] > 12.0
    assert top.distances["model_other"] < 0.5
    # finding again adds nothing
    assert suspects_find_from_oof(version=shifted, path="oof.json") == n
    assert SuspectAnnotation.objects.filter(version=shifted).count() == n


def test_agreement_with_this_annotator_is_not_suspect():
    pts = np.array([[100.0 + 10 * i, 100.0] for i in range(7)])
    other = pts + [10.0, 0]  # 3 mm away
    image = Annotated(key="x", annotations={"a": pts, "b": other}, spacing=(0.3, 0.3))
    found = find_suspects(images=[image], predictions={"x": pts + 0.5})
    assert {s.annotator for s in found} == {"b"}
    assert (
        find_suspects(images=[image], predictions={"x": (pts + other) / 2}) == []
    )  # between: nobody


@pytest.mark.parametrize(
    ("path", "code"), [("../oof.json", "path_traversal"), ("nope.json", "path_not_found")]
)
def test_a_bad_oof_path_is_refused(shifted, path, code):
    with pytest.raises(InvalidInput) as err:
        suspects_find_from_oof(version=shifted, path=path)
    assert err.value.code == code


def test_an_oof_file_of_other_cases_is_refused(shifted, dataset_roots):
    (dataset_roots / "other.json").write_text(
        json.dumps({"cases": [{"case_id": "999", "points": [[0, 0]] * 7}]})
    )
    with pytest.raises(InvalidInput) as err:
        suspects_find_from_oof(version=shifted, path="other.json")
    assert err.value.code == "predictions_unmatched"
    (dataset_roots / "bad.json").write_text("{not json")
    with pytest.raises(InvalidInput) as err:
        suspects_find_from_oof(version=shifted, path="bad.json")
    assert err.value.code == "invalid_predictions"


def test_decisions_are_audited_idempotent_and_final(shifted, engineer):
    suspects_find_from_oof(version=shifted, path="oof.json")
    s = shifted.suspects.order_by("-evidence").first()
    decided = suspect_decide(
        suspect=s, decision="confirmed", user=engineer, note="N is on the soft tissue"
    )
    assert (decided.status, decided.decided_by) == ("confirmed", engineer)
    again = suspect_decide(suspect=s, decision="confirmed", user=engineer)
    assert again.decided_at == decided.decided_at
    with pytest.raises(Conflict) as err:
        suspect_decide(suspect=s, decision="dismissed", user=engineer)
    assert err.value.code == "already_decided"
    with pytest.raises(InvalidInput):
        suspect_decide(suspect=s, decision="maybe", user=engineer)
    events = AuditEvent.objects.filter(action="dataset_suspect_decide", target_id=str(s.pk))
    assert list(events.values_list("details__decision", flat=True)) == ["confirmed"]


def test_a_corrected_version_takes_the_other_annotators_point(shifted, engineer):
    with pytest.raises(Conflict):
        dataset_version_correct(version=shifted, user=engineer)
    suspects_find_from_oof(version=shifted, path="oof.json")
    s = shifted.suspects.get(image__key="002", annotator="senior", landmark="N")
    suspect_decide(suspect=s, decision="confirmed", user=engineer)
    derived = dataset_version_correct(version=shifted, user=engineer)
    assert (derived.number, derived.parent_id, derived.source_kind) == (2, shifted.pk, "derived")
    assert derived.content_hash != shifted.content_hash
    assert set(derived.files.values_list("sha256", flat=True)) == set(
        shifted.files.values_list("sha256", flat=True)
    )
    fixed = derived.images.get(key="002").annotations
    assert fixed["senior"][1] == shifted.images.get(key="002").annotations["junior"][1]
    assert fixed["senior"][0] == shifted.images.get(key="002").annotations["senior"][0]
    assert (
        AuditEvent.objects.filter(action="dataset_correct", target_id=str(derived.pk)).count() == 1
    )
    body = zipfile.ZipFile(io.BytesIO(annotations_zip(version=derived)))
    n_line = body.read("annotations/senior/002.txt").decode().splitlines()[1]
    assert n_line == "{:.3f},{:.3f}".format(*fixed["senior"][1])
    assert "splits.csv" in body.namelist()


def test_a_registered_model_finds_the_shifted_annotation(make_isbi, bundled_model):
    folder = make_isbi(
        "model", CASES[:2], [partial(defect_shift_senior, case="002", line=0, dx=25.0)]
    )
    version = dataset_register_folder(path=folder, name="Model", spacing=ISBI_SPACING)
    predictions = predictions_from_model(version=version, model_version=bundled_model)
    assert set(predictions) == {"001", "002"}
    suspects_find(version=version, predictions=predictions, source=f"model:{bundled_model}")
    found = set(version.suspects.values_list("image__key", "annotator", "landmark"))
    assert ("002", "senior", "S") in found
    assert ("001", "senior", "S") not in found
