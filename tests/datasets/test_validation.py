"""Validation runs on the shared sets (the known facts) and on crafted defects."""

from __future__ import annotations

from functools import partial

import pytest
from django.test import override_settings

from apps.datasets.models import Finding, ImageCheck, ValidationRun
from apps.datasets.services import (
    dataset_register_folder,
    validation_run_execute,
    validation_run_start,
    validation_run_step,
)
from apps.issues.models import Issue
from apps.outbox.models import OutboxMessage
from mahtqa.datasets.layouts import split_of
from tests.datasets.conftest import (
    ISBI_SPACING,
    README_MEANS,
    defect_blur,
    defect_delete_image,
    defect_duplicate,
    defect_outside,
    defect_swap_landmarks,
    defect_truncate,
    needs_hamedan,
    needs_isbi,
)

pytestmark = [pytest.mark.django_db, needs_isbi]

CASES = [f"{i:03d}" for i in range(1, 13)]


def _validate(version) -> ValidationRun:
    return validation_run_execute(run_id=validation_run_start(version=version).pk)


def _codes(run: ValidationRun, image: str = "") -> set[str]:
    qs = run.findings.all()
    if image:
        qs = qs.filter(image__key=image)
    return set(qs.values_list("code", flat=True))


def test_the_isbi_subset_shows_the_known_annotator_figures(dataset_roots):
    version = dataset_register_folder(path="isbi2015-subset", name="ISBI", spacing=ISBI_SPACING)
    run = _validate(version)
    assert run.status == "done"
    pair = run.summary["consistency"]["pairs"]["junior|senior"]
    for name, expected in README_MEANS.items():
        assert abs(pair["landmarks"][name]["mean"] - expected) <= 0.05, name
    assert abs(pair["overall"]["mean"] - 1.66) <= 0.05
    assert abs(pair["overall"]["over_threshold_pct"] - 24.6) <= 0.5
    assert pair["least_consistent"] == ["A", "B"]
    assert run.summary["integrity_score"] == 1.0
    assert run.summary["images"] == 100
    least = run.findings.get(code="annotator_least_consistent")
    assert least.landmark == "A,B"
    # no critical or error finding on the clean set; the burned-in text is noted
    assert run.counts.get("critical", 0) == 0
    assert run.counts.get("error", 0) == 0
    assert run.findings.filter(code="quality_burned_in_text").count() >= 80
    assert run.issue_id is None


@needs_hamedan
def test_the_hamedan_set_validates_with_its_own_annotators(dataset_roots):
    version = dataset_register_folder(path="hamedan-dev", name="Hamedan", spacing="0.136")
    assert version.annotators == ["farhadifar", "mollabashi"]
    run = _validate(version)
    assert run.status == "done"
    pair = run.summary["consistency"]["pairs"]["farhadifar|mollabashi"]
    assert pair["overall"]["n"] == 50 * 7
    assert run.summary["sizes"] == {"1340x1671": 50}
    assert run.summary["integrity_score"] == 1.0
    assert run.counts.get("critical", 0) == 0


def _other_split_key(case: str) -> str:
    return next(f"dup{i}" for i in range(100) if split_of(f"dup{i}") != split_of(case))


def test_every_crafted_defect_is_found(make_isbi):
    dup = _other_split_key("003")
    folder = make_isbi(
        "crafted",
        CASES,
        [
            partial(defect_delete_image, case="001"),
            partial(defect_truncate, case="002"),
            partial(defect_duplicate, case="003", new=dup),
            partial(defect_swap_landmarks, case="004"),
            partial(defect_outside, case="005"),
            partial(defect_blur, case="006"),
        ],
    )
    version = dataset_register_folder(path=folder, name="Crafted", spacing=ISBI_SPACING)
    run = _validate(version)
    problems = {(p["code"], p["file"]) for p in version.layout_problems}
    assert ("annotation_without_image", "annotations/junior/001.txt") in problems
    assert "image_truncated" in _codes(run, "002")
    assert "split_leakage_duplicate" in _codes(run, dup)
    swapped = run.findings.filter(image__key="004", annotator="senior")
    assert "anatomy_order_a_b" in set(swapped.values_list("code", flat=True))
    assert set(
        run.findings.filter(image__key="004", code="annotator_disagreement").values_list(
            "landmark", flat=True
        )
    ) >= {"A", "B"}
    outside = run.findings.get(image__key="005", code="annotation_outside_image")
    assert (outside.landmark, outside.annotator, outside.severity) == ("S", "junior", "error")
    assert "quality_blurry" in _codes(run, "006")
    # the clean cases carry no error
    clean = run.findings.filter(image__key__in=CASES[6:], severity__in=["error", "critical"])
    assert list(clean.values_list("code", flat=True)) == []
    # 12 images (001 deleted, the duplicate added), of which 002 does not read
    assert (run.summary["images"], run.summary["readable"]) == (12, 11)
    assert run.summary["integrity_score"] == round(11 / 12, 4)


def test_critical_findings_file_one_issue_linked_to_the_version_and_fold(make_isbi):
    folder = make_isbi("broken", CASES[:4], [partial(defect_truncate, case="002")])
    version = dataset_register_folder(path=folder, name="Broken", spacing=ISBI_SPACING)
    first = _validate(version)
    assert first.issue_id is not None
    issue = Issue.objects.get(pk=first.issue_id)
    assert (issue.category, issue.dataset_version_id) == ("data", version.pk)
    assert "image_truncated" in issue.title
    second = _validate(version)
    assert second.issue_id == first.issue_id
    issue.refresh_from_db()
    assert issue.occurrence_count == 2


def test_a_file_changed_after_registration_is_critical(make_isbi, dataset_roots):
    folder = make_isbi("changing", CASES[:3])
    version = dataset_register_folder(path=folder, name="Changing", spacing=ISBI_SPACING)
    defect_blur(dataset_roots / folder, "002")
    run = _validate(version)
    changed = run.findings.get(code="file_changed")
    assert (changed.image.key, changed.severity) == ("002", "critical")


def test_steps_are_chunked_resumable_and_safe_to_repeat(make_isbi):
    folder = make_isbi("chunks", CASES[:5])
    version = dataset_register_folder(path=folder, name="Chunks", spacing=ISBI_SPACING)
    with override_settings(MAHTQA_DATASET_CHUNK=2):
        run = validation_run_start(version=version)
        assert OutboxMessage.objects.filter(dedupe_key=f"dataset-validate:{run.pk}:0").count() == 1
        assert validation_run_step(run_id=run.pk) == "step"
        run.refresh_from_db()
        assert (run.status, run.done, run.total) == ("running", 2, 5)
        # a redelivered copy of the first step finds the cursor moved: nothing changes
        ValidationRun.objects.filter(pk=run.pk).update(cursor=0)
        assert ImageCheck.objects.filter(run=run).count() == 2
        ValidationRun.objects.filter(pk=run.pk).update(cursor=run.cursor)
        findings_before = Finding.objects.filter(run=run).count()
        while validation_run_step(run_id=run.pk) == "step":
            pass
    run.refresh_from_db()
    assert (run.status, run.done) == ("done", 5)
    assert ImageCheck.objects.filter(run=run).count() == 5
    assert Finding.objects.filter(run=run).count() >= findings_before
    # a step arriving after the end does nothing
    assert validation_run_step(run_id=run.pk) == "done"


def test_a_second_start_returns_the_active_run(make_isbi):
    folder = make_isbi("twice", CASES[:2])
    version = dataset_register_folder(path=folder, name="Twice", spacing=ISBI_SPACING)
    first = validation_run_start(version=version)
    assert validation_run_start(version=version).pk == first.pk
    assert ValidationRun.objects.filter(version=version).count() == 1


def test_without_spacing_distances_are_in_pixels_and_flagged(make_isbi):
    folder = make_isbi("nospacing", CASES[:3])
    version = dataset_register_folder(path=folder, name="No spacing")
    run = _validate(version)
    assert run.summary["consistency"]["unit"] == "px"
    assert run.findings.filter(code="spacing_unknown").count() == 1
    assert run.findings.filter(code="annotator_disagreement").count() == 0


def test_missing_and_empty_files_after_registration_are_critical(make_isbi, dataset_roots):
    folder = make_isbi("vanishing", CASES[:3])
    version = dataset_register_folder(path=folder, name="Vanishing", spacing=ISBI_SPACING)
    (dataset_roots / folder / "images" / "001.png").unlink()
    (dataset_roots / folder / "images" / "002.png").write_bytes(b"")
    run = _validate(version)
    got = {(f.image.key, f.code, f.severity) for f in run.findings.filter(severity="critical")}
    assert got == {("001", "image_missing", "critical"), ("002", "image_zero_byte", "critical")}
    assert run.summary["integrity_score"] == round(1 / 3, 4)


def test_every_code_found_is_catalogued_and_documented(make_isbi):
    from pathlib import Path

    from mahtqa.datasets.codes import FINDING_CODES

    dup = _other_split_key("003")
    folder = make_isbi("catalogue", CASES, [
        partial(defect_truncate, case="002"), partial(defect_duplicate, case="003", new=dup),
        partial(defect_swap_landmarks, case="004"), partial(defect_outside, case="005"),
        partial(defect_blur, case="006"),
    ])  # fmt: skip
    run = _validate(dataset_register_folder(path=folder, name="Catalogue", spacing=ISBI_SPACING))
    assert _codes(run) - set(FINDING_CODES) == set()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "datasets.md").read_text()
    assert [c for c in FINDING_CODES if f"| `{c}` |" not in docs] == []


@pytest.mark.django_db(transaction=True)
def test_two_copies_of_a_step_at_once_check_the_chunk_once(make_isbi):
    """Both copies pick the step up at the same cursor and check the chunk; the first
    to get the run's lock commits, the other finds the cursor moved and discards its
    work. The test holds the lock until both are waiting on it."""
    import threading
    import time

    from django.db import connection, transaction

    folder = make_isbi("racing", CASES[:4])
    version = dataset_register_folder(path=folder, name="Racing", spacing=ISBI_SPACING)
    results = []

    def step():
        try:
            results.append(validation_run_step(run_id=run.pk))
        finally:
            connection.close()

    with override_settings(MAHTQA_DATASET_CHUNK=2):
        run = validation_run_start(version=version)
        threads = [threading.Thread(target=step) for _ in range(2)]
        with transaction.atomic():
            ValidationRun.objects.select_for_update().get(pk=run.pk)
            for t in threads:
                t.start()
            waiting, deadline = 0, time.monotonic() + 30
            with connection.cursor() as cur:
                while waiting < 2 and time.monotonic() < deadline:
                    cur.execute("SELECT pg_stat_clear_snapshot()")
                    cur.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND wait_event_type = 'Lock'"
                    )
                    waiting = cur.fetchone()[0]
                    time.sleep(0.05)
            assert waiting == 2
        for t in threads:
            t.join(60)
    assert sorted(results) == ["skipped", "step"]
    run.refresh_from_db()
    assert (run.status, run.done) == ("running", 2)
    assert ImageCheck.objects.filter(run=run).count() == 2
    key = f"dataset-validate:{run.pk}:{run.cursor}"
    assert OutboxMessage.objects.filter(dedupe_key=key).count() == 1
