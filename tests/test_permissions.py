"""Every URL x every role -> the exact status: ONE table, driven by the URL resolver.

``EXPECTED[url_name][method]`` is a row of statuses, one per column of ``ROLES``:

- ``anonymous``: no session, no token;
- ``radiologist`` ... ``admin``: a signed-in session of that role;
- ``api_a`` / ``api_b``: two API clients, ``Authorization: Token <key>`` only (API clients
  cannot sign in with a password, so there is no "API client with a session" column).
  Every object of the world belongs to client A: B gets 404 where A gets the object.

``LOGIN`` is a 302 whose Location is the login page (``accounts:login``; ``admin:login``
for the admin site). A plain 302 must go anywhere but the login page. 500 is never an
acceptable answer (the test client re-raises a page's exception; the API's 500 is a status
no row allows).

The door rules written here: an HTML page requested with only a token header is
anonymous (302 to login), ``/api/docs/`` included (session only); ``/api/schema/`` is
open to any authenticated caller, tokens included; an API client links an issue only to
its own studies (someone else's and a missing one are both 404 ``not_found``).

Path arguments are real objects built by tests/factories (``PATH_OBJECT``): one study of
client A with its files, prediction and open review task, an issue of A's study with two
occurrences, a second issue, the active model version and an inactive one. A URL in the
resolver without a row fails ``test_every_url_has_a_row``; the admin site is covered by
two rows only (``admin:index`` and ``admin:login``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from apps.accounts.models import User
from apps.clinical.choices import StudyStatus
from apps.clinical.models import ReviewTask, Study
from apps.datasets.models import DatasetVersion, ProfileRun, SuspectAnnotation, ValidationRun
from apps.issues.models import Issue, Occurrence
from apps.models.models import EvaluationRun, ModelVersion, TrainingRun
from apps.monitoring.models import Incident
from apps.monitoring.services.incidents import ack_token_make, incident_trigger
from mahtqa.imaging.write import write_cr
from tests.conftest import role_groups_restore
from tests.factories import (
    PASSWORD,
    ApiClientFactory,
    IssueFactory,
    IssueSettingsFactory,
    ModelVersionFactory,
    PredictionFactory,
    ReviewTaskFactory,
    RoutingPolicyFactory,
    StudyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "radiologist", "senior_radiologist", "engineer", "admin", "api_a", "api_b")
LOGIN = "302 to login"
ADMIN_ROWS = {"admin:index", "admin:login"}
CODES = {200, 201, 202, 302, 400, 401, 403, 404, 405, 409, LOGIN}
API_ERROR_CODES = {401: "not_authenticated", 403: "permission_denied", 405: "method_not_allowed"}

# fmt: off
EXPECTED: dict[str, dict[str, tuple]] = {
    #                                 anonymous radiol  senior  engineer admin  api_a   api_b
    "home":                  {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "admin:index":           {"GET":  (LOGIN,   LOGIN,  LOGIN,  LOGIN,  200,    LOGIN,  LOGIN)},
    "admin:login":           {"GET":  (200,     200,    200,    200,    302,    200,    200)},
    "accounts:login":        {"GET":  (200,     302,    302,    302,    302,    200,    200),
                              # anonymous signs in as a radiologist; signed-in users are sent
                              # home; API clients try their own (usable!) password: refused.
                              "POST": (302,     302,    302,    302,    302,    200,    200)},
    "accounts:logout":       {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN,  LOGIN)},
    "models:list":           {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:activate":       {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "models:rollback":       {"GET":  (LOGIN,   403,    403,    403,    200,    LOGIN,  LOGIN),
                              # the world has one model: nothing to roll back to (shown, 409)
                              "POST": (LOGIN,   403,    403,    403,    409,    LOGIN,  LOGIN)},
    "issues:list":           {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "issues:new":            {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN),
                              "POST": (LOGIN,   302,    302,    302,    302,    LOGIN,  LOGIN)},
    "issues:similar":        {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "issues:bulk":           {"GET":  (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "issues:metrics":        {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "issues:settings":       {"GET":  (LOGIN,   403,    403,    403,    200,    LOGIN,  LOGIN),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "issues:detail":         {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "issues:triage":         {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "issues:comment":        {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   302,    302,    302,    302,    LOGIN,  LOGIN)},
    "issues:merge":          {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "issues:split":          {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "clinical:review_queue": {"GET":  (LOGIN,   200,    200,    403,    200,    LOGIN,  LOGIN)},
    "clinical:queue_counts": {"GET":  (LOGIN,   200,    200,    403,    200,    LOGIN,  LOGIN)},
    "clinical:next_case":    {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   302,    302,    403,    302,    LOGIN,  LOGIN)},
    "clinical:escalations":  {"GET":  (LOGIN,   403,    200,    403,    200,    LOGIN,  LOGIN)},
    "clinical:my_cases":     {"GET":  (LOGIN,   200,    200,    403,    200,    LOGIN,  LOGIN)},
    "clinical:study_list":   {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "clinical:review":       {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "clinical:review_image": {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "clinical:claim":        {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   302,    302,    403,    302,    LOGIN,  LOGIN)},
    "clinical:release":      {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   302,    302,    403,    302,    LOGIN,  LOGIN)},
    "clinical:recompute":    {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   200,    200,    403,    200,    LOGIN,  LOGIN)},
    "clinical:decide":       {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   302,    302,    403,    302,    LOGIN,  LOGIN)},
    "clinical:take_over":    {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    302,    403,    302,    LOGIN,  LOGIN)},
    "clinical:thresholds":   {"GET":  (LOGIN,   403,    403,    403,    200,    LOGIN,  LOGIN),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "clinical:site_action":  {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "clinical:audit":        {"GET":  (LOGIN,   403,    403,    403,    200,    LOGIN,  LOGIN)},
    "monitoring:healthz":    {"GET":  (200,     200,    200,    200,    200,    200,    200)},
    "monitoring:readyz":     {"GET":  (200,     200,    200,    200,    200,    200,    200)},
    # the test client is 127.0.0.1, in the default MAHTQA_METRICS_ALLOW: every caller may
    # scrape; roles play no part (tests/monitoring/test_metrics.py: the network and token)
    "monitoring:metrics":    {"GET":  (200,     200,    200,    200,    200,    200,    200)},
    "monitoring:workers":    {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:dashboard":  {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:patterns":   {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:health":     {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:clinical":   {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:clinical_thresholds":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "monitoring:incidents":  {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:incident_open":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "monitoring:incident":   {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
    "monitoring:incident_settings":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "monitoring:incident_link":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "monitoring:incident_ack":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   302,    302,    302,    302,    LOGIN,  LOGIN)},
    "monitoring:incident_action":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "monitoring:incident_status":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    # the world's incident is open, not resolved: closing it is refused (shown, 409)
    "monitoring:incident_record":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    409,    409,    LOGIN,  LOGIN)},
    "monitoring:incident_note":
                             {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    # the link in a page: anyone holding it may acknowledge (signed token, no session)
    "monitoring:incident_ack_link":
                             {"GET":  (200,     200,    200,    200,    200,    200,    200),
                              "POST": (200,     200,    200,    200,    200,    200,    200)},
    "accounts-api:me":       {"GET":  (401,     200,    200,    200,    200,    200,    200)},
    "clinical-api:study-list":
                             {"GET":  (401,     200,    200,    200,    200,    200,    200),
                              "POST": (401,     403,    403,    403,    202,    202,    202)},
    "clinical-api:study-detail":
                             {"GET":  (401,     200,    200,    200,    200,    200,    404)},
    "issues-api:list":       {"GET":  (401,     403,    403,    200,    200,    403,    403),
                              "POST": (401,     201,    201,    201,    201,    201,    201)},
    "issues-api:detail":     {"GET":  (401,     403,    403,    200,    200,    403,    403)},
    # a reporter sees its own issue's suggestions (the world's issue is client A's);
    # anyone else who cannot triage gets the 404 `not_found` of a missing issue
    "issues-api:similar":    {"GET":  (401,     404,    404,    200,    200,    200,    404)},
    "datasets:list":         {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:register":     {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "datasets:version":      {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:validate":     {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "datasets:profile_start":{"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "datasets:image":        {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:image_file":   {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:suspects":     {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:suspects_find":{"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "datasets:suspect_decide":{"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:correct":      {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "datasets:annotations_zip":{"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:run":          {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:run_export":   {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets:profile":      {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "datasets-api:list":     {"GET":  (401,     403,    403,    200,    200,    403,    403),
                              "POST": (401,     403,    403,    201,    201,    403,    403)},
    "datasets-api:version":  {"GET":  (401,     403,    403,    200,    200,    403,    403)},
    "datasets-api:validate": {"GET":  (401,     403,    403,    405,    405,    403,    403),
                              "POST": (401,     403,    403,    202,    202,    403,    403)},
    "datasets-api:profile_start":{"GET":  (401,     403,    403,    405,    405,    403,    403),
                              "POST": (401,     403,    403,    202,    202,    403,    403)},
    "datasets-api:suspects": {"GET":  (401,     403,    403,    200,    200,    403,    403),
                              "POST": (401,     403,    403,    200,    200,    403,    403)},
    "datasets-api:suspect_decide":{"GET":  (401,     403,    403,    405,    405,    403,    403),
                              "POST": (401,     403,    403,    200,    200,    403,    403)},
    "datasets-api:correct":  {"GET":  (401,     403,    403,    405,    405,    403,    403),
                              "POST": (401,     403,    403,    409,    409,    403,    403)},
    "datasets-api:run":      {"GET":  (401,     403,    403,    200,    200,    403,    403)},
    "datasets-api:findings": {"GET":  (401,     403,    403,    200,    200,    403,    403)},
    "datasets-api:profile":  {"GET":  (401,     403,    403,    200,    200,    403,    403)},
    "models:runs":           {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:run_compare":    {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:run":            {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:evaluations":    {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:evaluation_start":{"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    302,    302,    LOGIN,  LOGIN)},
    "models:evaluation_compare":{"GET":  (LOGIN,   403,    403,    404,    404,    LOGIN,  LOGIN)},
    "models:evaluation":     {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:gates":          {"GET":  (LOGIN,   403,    403,    403,    200,    LOGIN,  LOGIN),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "models:shadow":         {"GET":  (LOGIN,   403,    403,    200,    200,    LOGIN,  LOGIN)},
    "models:shadow_action":  {"GET":  (405,     405,    405,    405,    405,    405,    405),
                              "POST": (LOGIN,   403,    403,    403,    302,    LOGIN,  LOGIN)},
    "models-api:runs":       {"GET":  (401,     403,    403,    200,    200,    403,    403),
                              "POST": (401,     403,    403,    201,    201,    201,    201)},
    "models-api:run_import": {"GET":  (401,     403,    403,    405,    405,    403,    403),
                              "POST": (401,     403,    403,    201,    201,    403,    403)},
    "models-api:run":        {"GET":  (401,     403,    403,    200,    200,    200,    404)},
    "models-api:run_metrics":{"GET":  (401,     403,    403,    200,    200,    200,    404),
                              "POST": (401,     403,    403,    200,    200,    200,    404)},
    "models-api:run_finish": {"GET":  (401,     403,    403,    405,    405,    405,    405),
                              "POST": (401,     403,    403,    200,    200,    200,    404)},
    "models-api:evaluations":{"GET":  (401,     403,    403,    405,    405,    403,    403),
                              "POST": (401,     403,    403,    202,    202,    403,    403)},
    "models-api:evaluation_compare":
                             {"GET":  (401,     403,    403,    400,    400,    403,    403)},
    "models-api:evaluation": {"GET":  (401,     403,    403,    200,    200,    403,    403)},
    "api-schema":            {"GET":  (401,     200,    200,    200,    200,    200,    200)},
    "api-docs":              {"GET":  (LOGIN,   200,    200,    200,    200,    LOGIN,  LOGIN)},
}
# fmt: on

# URL name -> the world's object whose id (int converters) or public id (uuid) fills the path.
PATH_OBJECT = {
    "models:activate": "inactive_model",
    **dict.fromkeys(
        (
            "datasets:version",
            "datasets:validate",
            "datasets:profile_start",
            "datasets:suspects",
            "datasets:suspects_find",
            "datasets:correct",
            "datasets:annotations_zip",
            "datasets-api:version",
            "datasets-api:validate",
            "datasets-api:profile_start",
            "datasets-api:suspects",
            "datasets-api:correct",
        ),
        "dataset_version",
    ),
    **dict.fromkeys(
        ("datasets:run", "datasets-api:run", "datasets-api:findings"), "validation_run"
    ),
    **dict.fromkeys(("datasets:profile", "datasets-api:profile"), "profile_run"),
    **dict.fromkeys(
        ("models:run", "models-api:run", "models-api:run_metrics", "models-api:run_finish"),
        "training_run",
    ),
    **dict.fromkeys(("models:evaluation", "models-api:evaluation"), "evaluation"),
    "models:shadow": "inactive_model",
    **dict.fromkeys(
        (
            "monitoring:incident",
            "monitoring:incident_ack",
            "monitoring:incident_action",
            "monitoring:incident_status",
            "monitoring:incident_record",
            "monitoring:incident_note",
            "monitoring:incident_link",
        ),
        "incident",
    ),  # fmt: skip
    "issues:detail": "issue",
    "issues:triage": "issue",
    "issues:comment": "issue",
    "issues:merge": "issue",
    "issues:split": "occurrence",
    "clinical:review": "study",
    "clinical:review_image": "study",
    "clinical:claim": "study",
    "clinical:release": "study",
    "clinical:recompute": "study",
    "clinical:decide": "study",
    "clinical:take_over": "study",
    "clinical-api:study-detail": "study",
    "issues-api:detail": "issue",
    "issues-api:similar": "issue",
}


# --- The resolver ----------------------------------------------------------------------


def resolved_urls() -> tuple[dict[str, frozenset[str]], list[str]]:
    """Every named URL (``namespace:name``) -> its path parameters; and unnamed patterns."""
    names: dict[str, frozenset[str]] = {}
    unnamed: list[str] = []

    def walk(patterns, namespace: str, route: str, params: frozenset[str]) -> None:
        for p in patterns:
            here = params | frozenset(p.pattern.converters)
            if isinstance(p, URLResolver):
                if p.namespace == "admin":
                    continue  # the admin site: the two ADMIN_ROWS only
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                walk(p.url_patterns, ns, route + str(p.pattern), here)
            elif isinstance(p, URLPattern):
                if p.name is None:
                    unnamed.append(route + str(p.pattern))
                else:
                    names[namespace + p.name] = here

    walk(get_resolver().url_patterns, "", "/", frozenset())
    names.update(dict.fromkeys(ADMIN_ROWS, frozenset()))
    return names, unnamed


def test_every_url_has_a_row():
    names, _ = resolved_urls()
    assert set(names) - set(EXPECTED) == set(), "URLs without a row in EXPECTED"
    assert set(EXPECTED) - set(names) == set(), "rows in EXPECTED for URLs that do not exist"


def test_every_url_is_named():
    assert resolved_urls()[1] == []


def test_rows_are_complete_and_never_allow_500():
    for name, methods in EXPECTED.items():
        assert set(methods) <= {"GET", "POST"}, name
        assert "GET" in methods, name
        for method, row in methods.items():
            assert len(row) == len(ROLES), (name, method)
            assert set(row) <= CODES, (name, method, row)
    assert 500 not in CODES


def test_every_path_parameter_has_an_object():
    names, _ = resolved_urls()
    with_params = {name for name, params in names.items() if params}
    assert with_params == set(PATH_OBJECT) | set(PATH_KWARGS)


# --- The world -------------------------------------------------------------------------


@dataclass(repr=False)
class World:
    users: dict[str, User]
    keys: dict[str, str]
    study: Study
    task: ReviewTask
    issue: Issue
    other_issue: Issue
    occurrence: Occurrence
    active_model: ModelVersion
    inactive_model: ModelVersion
    dataset_version: DatasetVersion
    validation_run: ValidationRun
    suspect: SuspectAnnotation
    profile_run: ProfileRun
    training_run: TrainingRun
    evaluation: EvaluationRun
    incident: Incident


def world_build(root: Path) -> World:
    users = {
        role: UserFactory(username=f"door-{role}", role=role)
        for role in ("radiologist", "senior_radiologist", "engineer", "admin")
    }
    api_a = ApiClientFactory(username="pacs-a")
    api_b = ApiClientFactory(username="pacs-b")
    for api in (api_a, api_b):  # a usable password: the door must refuse it all the same
        api.set_password(PASSWORD)
        api.save(update_fields=["password"])
    users.update(api_a=api_a, api_b=api_b)

    weights = root / "models" / "w.pt"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(b"weights of the permission test" * 100)
    active = ModelVersionFactory(weights_file=weights, is_active=True, activated_at=timezone.now())
    inactive = ModelVersionFactory()
    RoutingPolicyFactory()
    IssueSettingsFactory()

    study = StudyFactory(
        submitted_by=api_a, rows=400, cols=320, spacing_row_mm=0.5, spacing_col_mm=0.5,
        status=StudyStatus.IN_REVIEW, files=True,
    )  # fmt: skip
    task = ReviewTaskFactory(
        study=study, prediction=PredictionFactory(study=study, model_version=active)
    )
    issue = IssueFactory(
        title="Landmark A drifts", reporter=api_a, study=study, model_version=active,
        occurrences=2,
    )  # fmt: skip
    other = IssueFactory(title="Loader is slow", severity="low")
    version, run, suspect, profile = _datasets_build(root / "datasets")
    training = TrainingRun.objects.create(name="door", created_by=api_a)
    training.metrics.create(step=0, name="train_loss", value=1.0)
    evaluation = EvaluationRun.objects.create(
        model_version=inactive, dataset_version=version, split="all", status="done"
    )
    incident, _ = incident_trigger(
        trigger="system_down", key="door", title="Door incident", summary="Seen at the door."
    )
    return World(
        users=users, keys={"api_a": api_a.raw_key, "api_b": api_b.raw_key}, study=study,
        task=task, issue=issue, other_issue=other, occurrence=issue.occurrences.first(),
        active_model=active, inactive_model=inactive, dataset_version=version,
        validation_run=run, suspect=suspect, profile_run=profile, training_run=training,
        evaluation=evaluation, incident=incident,
    )  # fmt: skip


def _datasets_build(root: Path):
    """A three-image ISBI-layout version (synthetic images), validated, with one suspect
    annotation and one (failed) profile, and an out-of-fold file beside it."""
    from apps.datasets.services import (
        dataset_register_folder,
        validation_run_execute,
        validation_run_start,
    )

    rng = np.random.default_rng(3)
    points = np.array([[300, 200], [500, 190], [480, 380], [470, 520], [480, 600], [450, 680],
                       [470, 660]], float)  # fmt: skip
    for sub in ("images", "annotations/a", "annotations/b"):
        (root / "door" / sub).mkdir(parents=True, exist_ok=True)
    for i in range(1, 4):
        cv2.imwrite(
            str(root / "door" / "images" / f"00{i}.png"),
            (rng.random((800, 640)) * 255).astype(np.uint8),
        )
        for a, dx in (("a", 0.0), ("b", 3.0)):
            text = "\n".join(f"{x + dx},{y}" for x, y in points) + "\n"
            (root / "door" / "annotations" / a / f"00{i}.txt").write_text(text)
    oof = [{"case_id": f"00{i}", "points": points.tolist()} for i in range(1, 4)]
    (root / "oof.json").write_text(json.dumps({"cases": oof}))
    log = "step,train_loss\n" + "".join(f"{i},{1.0 / (i + 1)}\n" for i in range(50))
    (root / "door-log.csv").write_text(log)
    version = dataset_register_folder(path="door", name="Door", spacing="0.3,0.3")
    run = validation_run_execute(run_id=validation_run_start(version=version).pk)
    image = version.images.get(key="001")
    suspect = SuspectAnnotation.objects.create(
        version=version, image=image, annotator="b", landmark="S", source="door", evidence=1.0,
        distances={"self_model": 3, "self_other": 3, "model_other": 0, "other": "a"},
        points={"self": [303, 200], "other": [300, 200], "model": [300, 200]},
    )  # fmt: skip
    profile = ProfileRun.objects.create(version=version, status="failed", error="door")
    return version, run, suspect, profile


@pytest.fixture(scope="module")
def _module_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once per module inside a transaction rolled back at the end (like Django's
    ``setUpTestData``); each test runs in a savepoint of it, so writes never leak. Files
    (storages, the weights) live in a temporary folder."""
    from django.core.files.storage import storages

    root = tmp_path_factory.mktemp("doors")
    files = override_settings(
        MAHTQA_DATASET_ROOTS=[root / "datasets"], MAHTQA_DATASET_STORE=root / "store",
        MEDIA_ROOT=root / "media", PHI_ROOT=root / "phi", MAHTQA_MODEL_DIR=root / "models",
        STORAGES={
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                        "OPTIONS": {"location": root / "media"}},
            "phi": {"BACKEND": "apps.core.storage.PhiStorage",
                    "OPTIONS": {"location": root / "phi"}},
        },
    )  # fmt: skip
    with django_db_blocker.unblock(), files:
        storages._storages = {}
        try:
            with transaction.atomic():
                role_groups_restore()
                yield world_build(root)
                transaction.set_rollback(True)
        finally:
            storages._storages = {}


@pytest.fixture
def world(_module_world, db) -> World:
    return _module_world


def cr_bytes(seed: int) -> bytes:
    pixels = (np.random.default_rng(seed).random((256, 200)) * 4000).astype(np.uint16)
    return write_cr(pixels, patient_name="DOE^JOHN", patient_id="P-DOOR")


def _thresholds_form(w: World, role: str) -> dict:
    return {
        "routing_mode": "risk_controlled", "tolerated_risk": "0.05",
        "min_confidence": "0.55", "max_ood_score": "1.0", "review_policy": "exceptions_only",
        "urgent_severities": ["high"], "sla_urgent": "60", "sla_normal": "1440",
        "escalation_chain": "radiologist, senior_radiologist, admin",
        "allowed_modalities": "CR, DX", "plausibility": "{}", "notify_senior": "",
        "notify_admin": "", "webhook_url": "", "note": "door test",
    }  # fmt: skip


def _login_form(w: World, role: str) -> dict:
    user = w.users["radiologist"] if role == "anonymous" else w.users[role]
    return {"username": user.username, "password": PASSWORD}


# URL name -> (world, role) -> the body of a POST that succeeds for a role that may.
# Form posts unless the body is ("json", data) or ("dicom", bytes).
POST_BODY: dict[str, Callable[[World, str], Any]] = {
    "accounts:login": _login_form,
    "issues:new": lambda w, r: {"title": "Seen from the door", "category": "data",
                                "severity": "low"},
    "issues:bulk": lambda w, r: {"ids": [w.issue.pk], "action": "severity", "value": "low"},
    "issues:settings": lambda w, r: {
        "critical_due_minutes": 30, "high_due_minutes": 480, "medium_due_minutes": 4320,
        "low_due_minutes": 20160, "notify_window_minutes": 60,
    },
    "issues:triage": lambda w, r: {"severity": "low"},
    "issues:comment": lambda w, r: {"text": "Seen it too."},
    "issues:merge": lambda w, r: {"target": w.other_issue.pk},
    "clinical:recompute": lambda w, r: {"landmarks": json.dumps(w.task.prediction.landmarks)},
    "clinical:decide": lambda w, r: {
        "action": "accept", "landmarks": json.dumps(w.task.prediction.landmarks),
    },
    "clinical:take_over": lambda w, r: {"reason": "The holder is off sick."},
    "clinical:thresholds": _thresholds_form,
    "clinical-api:study-list": lambda w, r: ("dicom", cr_bytes(seed=ROLES.index(r))),
    "issues-api:list": lambda w, r: ("json", {"title": "Reported through the API",
                                              "category": "data", "severity": "medium"}),
    "datasets:register": lambda w, r: {"name": f"Door {r}", "path": "door"},
    "datasets:suspects_find": lambda w, r: {"oof": "oof.json"},
    "datasets:suspect_decide": lambda w, r: {"decision": "dismissed"},
    "datasets-api:list": lambda w, r: ("json", {"name": f"Door api {r}", "path": "door"}),
    "datasets-api:suspects": lambda w, r: ("json", {"oof": "oof.json"}),
    "datasets-api:suspect_decide": lambda w, r: ("json", {"decision": "dismissed"}),
    "models-api:runs": lambda w, r: ("json", {"name": f"door run {r}"}),
    "monitoring:clinical_thresholds": lambda w, r: {"max_correction_rate": "0.35"},
    "monitoring:incident_open": lambda w, r: {"title": f"Drill by {r}", "severity": "sev3"},
    "monitoring:incident_action": lambda w, r: {"action": "review_all"},
    "monitoring:incident_status": lambda w, r: {"status": "mitigated"},
    "monitoring:incident_record": lambda w, r: {"cause": "c", "impact": "i",
                                                "actions_taken": "a"},
    "monitoring:incident_note": lambda w, r: {"text": "Looking at it."},
    "monitoring:incident_link": lambda w, r: {"issue": str(w.issue.pk)},
    "monitoring:incident_settings": lambda w, r: {"ack_timeout_minutes": "10",
                                                  "oncall_levels": "radiologist, admin"},
    "models-api:run_import": lambda w, r: ("json", {"name": "imported", "path": "door-log.csv"}),
    "models-api:run_metrics": lambda w, r: ("json", {"rows": [{"step": 1000, "train_loss": 0.5}]}),
    "models-api:evaluations": lambda w, r: ("json", {"model_version": str(w.inactive_model.pk),
                                                     "dataset_version": str(w.dataset_version.pk),
                                                     "split": "all"}),
}  # fmt: skip


def client_as(world: World, role: str) -> Client:
    if role == "anonymous":
        return Client()
    if role in world.keys:
        return Client(headers={"Authorization": f"Token {world.keys[role]}"})
    c = Client()
    c.force_login(world.users[role])
    return c


def url_for(world: World, name: str) -> str:
    params = resolved_urls()[0][name]
    if not params:
        return reverse(name)
    if name in PATH_KWARGS:
        return reverse(name, kwargs=PATH_KWARGS[name](world))
    obj = getattr(world, PATH_OBJECT[name])
    value = obj.public_id if "public_id" in params else obj.pk
    return reverse(name, kwargs=dict.fromkeys(params, value))


# URLs whose parameters are not one object's id.
PATH_KWARGS = {
    "clinical:site_action": lambda w: {"key": w.study.site.key, "action": "review-all"},
    "datasets:image": lambda w: {"pk": w.dataset_version.pk, "key": "001"},
    "datasets:image_file": lambda w: {"pk": w.dataset_version.pk, "key": "001"},
    "datasets:suspect_decide": lambda w: {"pk": w.dataset_version.pk, "suspect_id": w.suspect.pk},
    "datasets-api:suspect_decide": lambda w: {
        "pk": w.dataset_version.pk,
        "suspect_id": w.suspect.pk,
    },
    "datasets:run_export": lambda w: {"pk": w.validation_run.pk, "fmt": "csv"},
    "models:shadow_action": lambda w: {"pk": w.inactive_model.pk, "action": "stop"},
    "monitoring:incident_ack_link": lambda w: {
        "token": ack_token_make(incident_id=w.incident.pk, step=0)
    },
}


def request(world: World, role: str, method: str, name: str):
    client, url = client_as(world, role), url_for(world, name)
    if method == "GET":
        return client.get(url)
    body = POST_BODY.get(name, lambda w, r: {})(world, role)
    if isinstance(body, tuple) and body[0] == "json":
        return client.post(url, json.dumps(body[1]), content_type="application/json")
    if isinstance(body, tuple) and body[0] == "dicom":
        return client.post(url, body[1], content_type="application/dicom")
    return client.post(url, body)


CELLS = [
    pytest.param(name, method, role, expected, id=f"{name}-{method}-{role}")
    for name, methods in EXPECTED.items()
    for method, row in methods.items()
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("name", "method", "role", "expected"), CELLS)
def test_door(world, name, method, role, expected):
    response = request(world, role, method, name)
    where = response.get("Location", "")
    got = LOGIN if response.status_code == 302 and _is_login(name, where) else response.status_code
    assert got == expected, f"{method} {name} as {role}: {response.status_code} {where}"
    if response.request["PATH_INFO"].startswith("/api/v1/") and got in API_ERROR_CODES:
        assert response.json()["code"] == API_ERROR_CODES[got]


def _is_login(name: str, location: str) -> bool:
    login = reverse("admin:login" if name.startswith("admin:") else "accounts:login")
    return location.split("?")[0] == login


# --- Door rules the table cannot say -----------------------------------------------------


@pytest.mark.parametrize(
    ("client", "study", "status"),
    [("api_a", "own", 201), ("api_b", "other", 404), ("api_a", "missing", 404)],
)
def test_an_api_client_links_an_issue_only_to_its_own_studies(world, client, study, status):
    public_id = str(uuid.uuid4()) if study == "missing" else str(world.study.public_id)
    body = {"title": "Wrong landmark on this study", "category": "clinical",
            "severity": "medium", "study": public_id}  # fmt: skip
    response = client_as(world, client).post(
        reverse("issues-api:list"), json.dumps(body), content_type="application/json"
    )
    assert response.status_code == status, response.content[:300]
    linked = Issue.objects.filter(title=body["title"])
    if status == 404:
        assert response.json()["code"] == "not_found"
        assert linked.exists() is False
    else:
        assert list(linked.values_list("study_id", flat=True)) == [world.study.pk]
