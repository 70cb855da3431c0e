"""GET /metrics: values from crafted data, the door rules, query count, promtool lint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from datetime import timedelta

import factory
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from apps.accounts.choices import SecurityEventKind
from apps.accounts.models import SecurityEvent
from apps.clinical.choices import Priority, StudyStatus, TaskStatus
from apps.clinical.models import ReviewTask, Study
from apps.issues.choices import Status as IssueStatus
from apps.monitoring.metrics import INFERENCE_WINDOW, metrics_render, task_queue
from apps.monitoring.models import Incident
from apps.outbox.choices import OutboxStatus
from apps.outbox.models import OutboxMessage
from tests.factories import (
    HeartbeatFactory,
    IssueFactory,
    ModelVersionFactory,
    OutboxMessageFactory,
    PredictionFactory,
    ReadinessCheckFactory,
    ReviewTaskFactory,
    StudyFactory,
)

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-" + "x" * 32
PROMTOOL = os.environ.get("MAHTQA_PROMTOOL", "/usr/bin/promtool")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def samples(body: bytes) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted label pairs): value} of a plain-text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(found: dict, metric: str, /, **labels: str) -> float:
    return found[(metric, tuple(sorted(labels.items())))]


def scrape(client, **extra) -> bytes:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content[:300]
    return response.content


def _ago(model, pk: int, field: str, seconds: float) -> None:
    model.objects.filter(pk=pk).update(**{field: timezone.now() - timedelta(seconds=seconds)})


def _incident(severity: str, status: str) -> Incident:
    now = timezone.now()
    return Incident.objects.create(
        trigger="manual", fingerprint=f"test:{uuid.uuid4().hex}", severity=severity,
        status=status, title="Drill", opened_at=now, last_seen_at=now,
    )  # fmt: skip


@pytest.fixture
def world(db):
    """3 queued and 2 in-review studies (one urgent claimed task, overdue), 1 failed;
    outbox work on three queues; 4 timed predictions; issues; incidents; readiness;
    heartbeats."""
    queued = [StudyFactory(status=StudyStatus.QUEUED) for _ in range(3)]
    _ago(Study, queued[0].pk, "enqueued_at", 300)
    StudyFactory(status=StudyStatus.FAILED)
    urgent = ReviewTaskFactory(
        priority=Priority.URGENT, status=TaskStatus.CLAIMED,
        due_at=timezone.now() - timedelta(minutes=5),
    )  # fmt: skip
    _ago(ReviewTask, urgent.pk, "created_at", 3600)
    ReviewTaskFactory(priority=Priority.NORMAL)
    done = ReviewTaskFactory(status=TaskStatus.DONE)
    Study.objects.filter(pk=done.study_id).update(status=StudyStatus.REVIEWED)

    infer = [OutboxMessageFactory(kwargs={"study_id": s.pk}) for s in queued[:2]]
    _ago(OutboxMessage, infer[0].pk, "created_at", 120)
    OutboxMessageFactory(task="apps.datasets.tasks.validation_run_task", status=OutboxStatus.SENT)
    OutboxMessageFactory(task="apps.issues.tasks.notify_task", status=OutboxStatus.DEAD)
    OutboxMessageFactory(task="apps.issues.tasks.notify_task", status=OutboxStatus.DONE)

    model = ModelVersionFactory()
    for ms in (40.0, 400.0, 3000.0, 45000.0):
        PredictionFactory(
            study=StudyFactory(status=StudyStatus.RELEASED), model_version=model,
            timings_ms={"inference": ms, "decode": 5.0},
        )  # fmt: skip

    IssueFactory(severity="high")
    IssueFactory(severity="high", due_at=timezone.now() - timedelta(hours=1))
    IssueFactory(severity="critical", status=IssueStatus.RESOLVED)

    _incident("sev1", "open")
    _incident("sev2", "acknowledged")
    _incident("sev1", "resolved")

    ReadinessCheckFactory(checked_at=timezone.now() - timedelta(minutes=5), ok=True)
    latest = ReadinessCheckFactory(
        ok=False,
        results={"database": {"status": "ok", "latency_ms": 2.0},
                 "broker": {"status": "fail", "error": "OperationalError", "latency_ms": 2000.0},
                 "outbox": {"status": "warn", "warning": "outbox_backlog", "latency_ms": 1.5}},
    )  # fmt: skip
    HeartbeatFactory(source="worker:host-a:11")
    HeartbeatFactory(source="worker:host-b:12")
    HeartbeatFactory(source="worker:host-c:13", seen_at=timezone.now() - timedelta(hours=1))
    HeartbeatFactory(source="beat")
    return {"latest_readiness": latest}


def test_samples_match_the_crafted_data(client, world):
    found = samples(scrape(client))

    studies = {s: value(found, "mahtqa_studies", status=s) for s in StudyStatus.values}
    assert studies == {"queued": 3, "processing": 0, "released": 4, "in_review": 2,
                       "reviewed": 1, "failed": 1}  # fmt: skip
    assert 300 <= value(found, "mahtqa_studies_oldest_age_seconds", status="queued") < 330
    assert value(found, "mahtqa_studies_oldest_age_seconds", status="processing") == 0

    depth = {q: value(found, "mahtqa_queue_depth", queue=q) for q in ("inference", "default",
                                                                        "checks")}  # fmt: skip
    assert depth == {"inference": 2, "default": 0, "checks": 1}
    assert 120 <= value(found, "mahtqa_queue_oldest_age_seconds", queue="inference") < 150
    assert value(found, "mahtqa_queue_oldest_age_seconds", queue="default") == 0
    assert value(found, "mahtqa_outbox_messages", queue="default", status="dead") == 1
    assert value(found, "mahtqa_outbox_messages", queue="inference", status="pending") == 2
    assert value(found, "mahtqa_outbox_messages", queue="checks", status="sent") == 1

    # 0.04 s, 0.4 s, 3 s, 45 s (the review tasks' predictions carry no timing)
    buckets = {le: value(found, "mahtqa_inference_seconds_bucket", le=le)
               for le in ("0.05", "0.1", "0.5", "2.5", "5.0", "30.0", "60.0", "+Inf")}  # fmt: skip
    assert buckets == {"0.05": 1, "0.1": 1, "0.5": 2, "2.5": 2, "5.0": 3, "30.0": 3,
                       "60.0": 4, "+Inf": 4}  # fmt: skip
    assert value(found, "mahtqa_inference_seconds_gcount") == 4
    assert value(found, "mahtqa_inference_seconds_gsum") == pytest.approx(48.44)

    def backlog(priority, status):
        return value(found, "mahtqa_review_backlog", level="radiologist", priority=priority,
                     status=status)  # fmt: skip

    assert (backlog("urgent", "claimed"), backlog("urgent", "open")) == (1, 0)
    assert (backlog("normal", "open"), backlog("normal", "claimed")) == (1, 0)
    assert value(found, "mahtqa_review_backlog", level="admin", priority="urgent",
                 status="open") == 0  # fmt: skip
    assert value(found, "mahtqa_review_overdue", level="radiologist", priority="urgent") == 1
    assert value(found, "mahtqa_review_overdue", level="radiologist", priority="normal") == 0
    assert 3600 <= value(found, "mahtqa_review_oldest_age_seconds", level="radiologist",
                         priority="urgent") < 3630  # fmt: skip

    assert value(found, "mahtqa_issues_open", severity="high") == 2
    assert value(found, "mahtqa_issues_open", severity="critical") == 0
    assert value(found, "mahtqa_issues_overdue", severity="high") == 1

    assert value(found, "mahtqa_incidents_open", severity="sev1") == 1
    assert value(found, "mahtqa_incidents_open", severity="sev2") == 1
    assert value(found, "mahtqa_incidents_open", severity="sev3") == 0
    assert value(found, "mahtqa_incidents_unacknowledged", severity="sev1") == 1
    assert value(found, "mahtqa_incidents_unacknowledged", severity="sev2") == 0

    assert value(found, "mahtqa_ready") == 0
    assert {c: value(found, "mahtqa_readiness_ok", check=c)
            for c in ("database", "broker", "outbox")} == {"database": 1, "broker": 0,
                                                           "outbox": 1}  # fmt: skip
    assert value(found, "mahtqa_readiness_check_duration_seconds", check="broker") == 2.0
    latest = world["latest_readiness"].checked_at.timestamp()
    assert value(found, "mahtqa_readiness_last_run_timestamp_seconds") == pytest.approx(latest)

    assert value(found, "mahtqa_workers_alive") == 2
    assert value(found, "mahtqa_beat_heartbeat_timestamp_seconds") > 0


def test_an_empty_database_gives_zeros_and_no_readiness_samples(client, db):
    found = samples(scrape(client))
    assert value(found, "mahtqa_studies", status="queued") == 0
    assert value(found, "mahtqa_queue_depth", queue="inference") == 0
    assert value(found, "mahtqa_inference_seconds_bucket", le="+Inf") == 0
    assert value(found, "mahtqa_workers_alive") == 0
    assert not any(name in {"mahtqa_ready", "mahtqa_readiness_last_run_timestamp_seconds",
                            "mahtqa_model_active_info"} for name, _ in found)  # fmt: skip


def test_the_active_model_is_named(client, db):
    ModelVersionFactory(name="maht-net", version="7", is_active=True)
    found = samples(scrape(client))
    assert value(found, "mahtqa_model_active_info", name="maht-net", version="7") == 1


def test_inference_reads_only_the_latest_window(client, db, monkeypatch):
    monkeypatch.setattr("apps.monitoring.metrics.INFERENCE_WINDOW", 2)
    model = ModelVersionFactory()
    for ms in (50_000.0, 200.0, 300.0):  # the oldest (50 s) falls out of a window of 2
        PredictionFactory(model_version=model, timings_ms={"inference": ms})
    found = samples(scrape(client))
    assert value(found, "mahtqa_inference_seconds_gcount") == 2
    assert value(found, "mahtqa_inference_seconds_bucket", le="30.0") == 2
    assert INFERENCE_WINDOW == 1000


def test_tasks_are_routed_like_the_dispatcher_routes_them():
    assert task_queue("apps.clinical.tasks.study_infer_task") == "inference"
    assert task_queue("apps.datasets.tasks.validation_run_task") == "checks"
    assert task_queue("apps.issues.tasks.notify_task") == "default"


def test_query_count_is_small_and_constant(db):
    with CaptureQueriesContext(connection) as empty:
        metrics_render()
    ReviewTaskFactory.create_batch(3)
    StudyFactory.create_batch(3, status=StudyStatus.QUEUED)
    OutboxMessageFactory.create_batch(3)
    ModelVersionFactory(is_active=True)
    ReadinessCheckFactory()
    HeartbeatFactory.create_batch(3, source=factory.Sequence(lambda n: f"worker:h-{n}:1"))
    with CaptureQueriesContext(connection) as full:
        metrics_render()
    assert len(empty) == len(full) == 9, [q["sql"][:80] for q in full.captured_queries]


# --- promtool ---------------------------------------------------------------------------


def _promtool(body: bytes) -> subprocess.CompletedProcess:
    if not shutil.which(PROMTOOL):
        pytest.fail(f"{PROMTOOL} missing: apt-get install prometheus (.ci/run installs it)")
    return subprocess.run(
        [PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=60
    )


@pytest.mark.parametrize("accept", ["", "text/plain", OPENMETRICS])
def test_the_real_body_passes_promtool_check_metrics(client, world, accept):
    """Always the text format (what promtool parses), whatever the scraper prefers."""
    ModelVersionFactory(is_active=True)
    response = client.get("/metrics", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    result = _promtool(response.content)
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout.strip() == b""
    assert result.stderr.strip() == b""
    assert len(samples(response.content)) > 80


def test_promtool_does_find_problems(tmp_path):
    """The lint is live: a counter without _total and an abbreviated unit both fail."""
    bad = b"# HELP x_ms Time.\n# TYPE x_ms counter\nx_ms 1\n"
    result = _promtool(bad)
    assert result.returncode != 0
    assert b"x_ms" in result.stdout + result.stderr


# --- Who may scrape ---------------------------------------------------------------------


def _ip() -> str:
    """A fresh outside address per test: token-failure counters are per address."""
    n = uuid.uuid4().int
    return f"203.0.{n % 250 + 1}.{(n >> 8) % 250 + 1}"


def _denied(response, status: int = 403, code: str = "permission_denied") -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == code


@pytest.mark.parametrize("ip", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_loopback_may_scrape_by_default(client, db, ip):
    response = client.get("/metrics", REMOTE_ADDR=ip)
    assert response.status_code == 200
    assert b"mahtqa_studies" in response.content


def test_an_outside_address_is_refused_without_a_token(client, db):
    _denied(client.get("/metrics", REMOTE_ADDR=_ip()))


def test_a_signed_in_session_is_no_pass(client, engineer):
    client.force_login(engineer)
    _denied(client.get("/metrics", REMOTE_ADDR=_ip()))


def test_the_token_opens_the_door_from_anywhere(client, db, settings):
    settings.MAHTQA_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", REMOTE_ADDR=_ip(), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert b"mahtqa_queue_depth" in response.content


def test_a_wrong_token_is_refused_and_recorded(client, db, settings):
    settings.MAHTQA_METRICS_TOKEN = TOKEN
    ip = _ip()
    _denied(client.get("/metrics", REMOTE_ADDR=ip, HTTP_AUTHORIZATION=f"Bearer {TOKEN}x"))
    _denied(client.get("/metrics", REMOTE_ADDR=ip, HTTP_AUTHORIZATION=f"Token {TOKEN}"))
    events = SecurityEvent.objects.filter(ip_address=ip, kind=SecurityEventKind.TOKEN_FAILED)
    assert list(events.values_list("path", flat=True)) == ["/metrics"]  # Token: not a bearer


def test_without_a_configured_token_no_bearer_passes(client, db, settings):
    settings.MAHTQA_METRICS_TOKEN = ""
    _denied(client.get("/metrics", REMOTE_ADDR=_ip(), HTTP_AUTHORIZATION="Bearer "))
    _denied(client.get("/metrics", REMOTE_ADDR=_ip(), HTTP_AUTHORIZATION="Bearer anything"))


def test_repeated_wrong_tokens_are_throttled(client, db, settings):
    settings.MAHTQA_METRICS_TOKEN = TOKEN
    settings.MAHTQA_TOKEN_FAILURE_LIMIT = 3
    ip = _ip()
    for _ in range(3):
        _denied(client.get("/metrics", REMOTE_ADDR=ip, HTTP_AUTHORIZATION="Bearer wrong"))
    right = client.get("/metrics", REMOTE_ADDR=ip, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    _denied(right, status=429, code="throttled")
    assert right["Retry-After"] == str(settings.MAHTQA_TOKEN_FAILURE_WINDOW_S)


def test_the_allow_list_replaces_loopback(client, db, settings):
    settings.MAHTQA_METRICS_ALLOW = ["10.0.0.0/8", "fd00::/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="fd00::5").status_code == 200
    _denied(client.get("/metrics", REMOTE_ADDR="127.0.0.1"))
    _denied(client.get("/metrics", REMOTE_ADDR="11.0.0.1"))


def test_behind_an_unknown_proxy_only_the_token_passes(client, db, settings):
    """A local reverse proxy makes every client look like 127.0.0.1: a forwarded request
    with no trusted proxy configured never passes the network rule."""
    settings.MAHTQA_METRICS_TOKEN = TOKEN
    forwarded = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
    _denied(client.get("/metrics", **forwarded))
    _denied(client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_FORWARDED="for=198.51.100.7"))
    ok = client.get("/metrics", **forwarded, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert ok.status_code == 200


def test_only_get(client, db):
    assert client.post("/metrics").status_code == 405


@pytest.mark.parametrize(
    ("env", "message"),
    [({"MAHTQA_METRICS_TOKEN": "short"}, b"at least 32 characters"),
     ({"MAHTQA_METRICS_ALLOW": "10.0.0.0/8,not-a-network"}, b"not-a-network")],
)  # fmt: skip
def test_bad_settings_fail_at_start_up(env, message):
    result = subprocess.run(
        [sys.executable, "-c", "import mahtqa.settings.base"],
        env={**os.environ, **env}, capture_output=True, timeout=60, cwd=settings.BASE_DIR,
    )  # fmt: skip
    assert result.returncode != 0
    assert message in result.stderr


def test_behind_a_trusted_proxy_the_forwarded_address_decides(client, db, settings):
    """django-ipware (as for lockouts): with N trusted proxies X-Forwarded-For must hold
    exactly N + 1 addresses, the client's first; any other count gives no address."""
    settings.MAHTQA_PROXY_COUNT = settings.AXES_IPWARE_PROXY_COUNT = 1
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    settings.MAHTQA_METRICS_ALLOW = ["10.0.0.0/8"]

    def get(xff: str):
        return client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=xff)

    assert get("10.1.2.3, 192.0.2.1").status_code == 200
    _denied(get("198.51.100.7, 10.0.0.1"))
    _denied(get("10.1.2.3"))  # too few hops: no address
    _denied(get("10.1.2.3, 198.51.100.7, 192.0.2.1"))  # a forged extra hop: no address
