"""Prometheus metrics for ``GET /metrics``, read from the database on every scrape.

The database is the truth for every job's state (studies, outbox, review tasks,
issues, incidents, readiness runs, heartbeats), so nothing is counted in process
memory: any web process answers a scrape with the same numbers, and a restart
loses nothing. One custom collector (:class:`DatabaseCollector`) on a private
:class:`~prometheus_client.CollectorRegistry` (never the global one, so no
process or library metrics leak in) builds every family per scrape.

Cost: one query per family group (9 in all), whatever the number of rows; each is a
grouped count over an indexed status column, or a bounded read (the latest
inference timings, the latest readiness row). Families with labels list every
label value of their choices, zeros included, so series never vanish.

No PHI: only counts, ages, durations, check names and the active model's name.
"""

from __future__ import annotations

import bisect
import hmac
import ipaddress
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from apps.clinical.choices import EscalationLevel, Priority, StudyStatus, TaskStatus
from apps.clinical.selectors import (
    prediction_inference_ms_latest,
    review_task_backlog_cells,
    study_status_summary,
)
from apps.issues.choices import Severity
from apps.issues.selectors import issue_active_summary
from apps.models.selectors import model_version_active
from apps.monitoring.choices import ACTIVE_INCIDENT_STATUSES, IncidentSeverity, IncidentStatus
from apps.monitoring.models import Heartbeat, Incident, ReadinessCheck
from apps.monitoring.selectors import WORKER_PREFIX
from apps.outbox.choices import OutboxStatus
from apps.outbox.selectors import outbox_task_status_counts

PREFIX = "mahtqa"
# Inference time: the latest INFERENCE_WINDOW predictions (see _inference).
INFERENCE_WINDOW = 1000
INFERENCE_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OUTBOX_STATUSES = (OutboxStatus.PENDING, OutboxStatus.SENT, OutboxStatus.DEAD)
BEAT_SOURCE = "beat"


def _gauge(name: str, doc: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=list(labels))


def _age_s(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0


@lru_cache(maxsize=256)
def task_queue(task: str) -> str:
    """The Celery queue ``task`` is published to: Celery's own router over
    ``CELERY_TASK_ROUTES``, exactly as the outbox dispatcher's ``send_task`` routes it."""
    from mahtqa.celery import app

    queue = app.amqp.router.route({}, task).get("queue")
    return getattr(queue, "name", None) or str(queue or settings.CELERY_TASK_DEFAULT_QUEUE)


def _queue_names() -> list[str]:
    return [q.name for q in settings.CELERY_TASK_QUEUES]


def _studies(now: datetime) -> list[Metric]:
    by_status = study_status_summary()
    count = _gauge("studies", "Studies by processing status.", ["status"])
    for status in StudyStatus.values:
        count.add_metric([status], by_status.get(status, {}).get("n", 0))
    oldest = _gauge(
        "studies_oldest_age_seconds",
        "Age of the oldest study in a status: queued since enqueued, processing since "
        "started (0 when none).",
        ["status"],
    )
    queued = by_status.get(StudyStatus.QUEUED, {}).get("waiting")
    processing = by_status.get(StudyStatus.PROCESSING, {}).get("started")
    oldest.add_metric([StudyStatus.QUEUED], _age_s(now, queued))
    oldest.add_metric([StudyStatus.PROCESSING], _age_s(now, processing))
    return [count, oldest]


def _queues(now: datetime) -> list[Metric]:
    """Work waiting per Celery queue: outbox messages not yet picked up by a worker
    (pending: not yet published; sent: published, not started), routed by task name."""
    rows = outbox_task_status_counts(statuses=OUTBOX_STATUSES)
    queues = _queue_names()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    oldest: dict[str, datetime] = {}
    for row in rows:
        queue = task_queue(row["task"])
        if queue not in queues:
            queues.append(queue)
        counts[(queue, row["status"])] += row["n"]
        if row["status"] != OutboxStatus.DEAD and row["oldest"] is not None:
            oldest[queue] = min(oldest.get(queue, row["oldest"]), row["oldest"])
    depth = _gauge(
        "queue_depth", "Tasks waiting for a worker (outbox: pending or sent).", ["queue"]
    )
    age = _gauge(
        "queue_oldest_age_seconds",
        "Age of the oldest task waiting for a worker (0 when none).",
        ["queue"],
    )
    messages = _gauge(
        "outbox_messages", "Outbox messages by queue and status.", ["queue", "status"]
    )
    for queue in queues:
        live = counts[(queue, OutboxStatus.PENDING)] + counts[(queue, OutboxStatus.SENT)]
        depth.add_metric([queue], live)
        age.add_metric([queue], _age_s(now, oldest.get(queue)))
        for status in OUTBOX_STATUSES:
            messages.add_metric([queue, status], counts[(queue, status)])
    return [depth, age, messages]


def _seconds(value: Any) -> float | None:
    """A stored ``timings_ms["inference"]`` in seconds; None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return None
    return max(0.0, float(value)) / 1000.0


def _inference() -> list[Metric]:
    """Model inference time per study (``Prediction.timings_ms["inference"]``, the
    engine's forward pass as the pipeline measured it), over the latest
    ``INFERENCE_WINDOW`` predictions by id.

    A gauge histogram (in the text format: a histogram's ``_bucket`` series, with
    ``_gcount`` and ``_gsum`` gauges instead of ``_count``/``_sum`` counters): the
    distribution of a bounded recent window, not a cumulative counter. The window
    keeps each scrape one read, in primary-key order, of at most
    ``INFERENCE_WINDOW`` small values, bucketed here in Python (portable to SQLite),
    where a cumulative histogram would scan every prediction ever stored on every
    scrape. Read it without ``rate()``:
    ``histogram_quantile(0.95, mahtqa_inference_seconds_bucket)`` is the p95 of the
    latest predictions.
    """
    values = prediction_inference_ms_latest(limit=INFERENCE_WINDOW)
    seconds = [s for s in (_seconds(v) for v in values) if s is not None]
    per_bucket = [0] * (len(INFERENCE_BUCKETS_S) + 1)
    for s in seconds:
        per_bucket[bisect.bisect_left(INFERENCE_BUCKETS_S, s)] += 1
    cumulative, buckets = 0, []
    for bound, n in zip((*INFERENCE_BUCKETS_S, float("inf")), per_bucket, strict=True):
        cumulative += n
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    return [
        GaugeHistogramMetricFamily(
            f"{PREFIX}_inference_seconds",
            f"Model inference time per study, latest {INFERENCE_WINDOW} predictions.",
            buckets=buckets,
            gsum_value=sum(seconds),
        )
    ]


def _review(now: datetime) -> list[Metric]:
    rows = review_task_backlog_cells(now=now)
    cells = {(r["level"], r["priority"], r["status"]): r for r in rows}
    backlog = _gauge(
        "review_backlog",
        "Review tasks not yet decided, by escalation level, priority and status.",
        ["level", "priority", "status"],
    )
    overdue = _gauge(
        "review_overdue", "Review tasks past their SLA due time.", ["level", "priority"]
    )
    oldest = _gauge(
        "review_oldest_age_seconds",
        "Age of the oldest undecided review task (0 when none).",
        ["level", "priority"],
    )
    for level in EscalationLevel.values:
        for priority in Priority.values:
            here = [
                cells[key]
                for status in (TaskStatus.OPEN, TaskStatus.CLAIMED)
                if (key := (level, priority, status)) in cells
            ]
            for status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
                n = cells.get((level, priority, status), {}).get("n", 0)
                backlog.add_metric([level, priority, status], n)
            overdue.add_metric([level, priority], sum(r["overdue"] for r in here))
            first = min((r["oldest"] for r in here), default=None)
            oldest.add_metric([level, priority], _age_s(now, first))
    return [backlog, overdue, oldest]


def _issues(now: datetime) -> list[Metric]:
    by = issue_active_summary(now=now)
    open_ = _gauge("issues_open", "Engineering issues still being worked.", ["severity"])
    overdue = _gauge("issues_overdue", "Open issues past their response target.", ["severity"])
    for severity in Severity.values:
        open_.add_metric([severity], by.get(severity, {}).get("n", 0))
        overdue.add_metric([severity], by.get(severity, {}).get("overdue", 0))
    return [open_, overdue]


def _incidents() -> list[Metric]:
    rows = (
        Incident.objects.filter(status__in=ACTIVE_INCIDENT_STATUSES)
        .values("severity", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    active: dict[str, int] = defaultdict(int)
    unacked: dict[str, int] = defaultdict(int)
    for row in rows:
        active[row["severity"]] += row["n"]
        if row["status"] == IncidentStatus.OPEN:
            unacked[row["severity"]] += row["n"]
    open_ = _gauge(
        "incidents_open",
        "Incidents not yet resolved (open, acknowledged or mitigated).",
        ["severity"],
    )
    unack = _gauge(
        "incidents_unacknowledged", "Open incidents nobody has acknowledged yet.", ["severity"]
    )
    for severity in IncidentSeverity.values:
        open_.add_metric([severity], active[severity])
        unack.add_metric([severity], unacked[severity])
    return [open_, unack]


def _readiness() -> list[Metric]:
    """The latest recorded readiness run (beat records one a minute, /readyz on each
    call). No run recorded yet: the families have no samples (alert on ``absent``)."""
    row = ReadinessCheck.objects.order_by("-checked_at").first()
    ready = _gauge("ready", "1 when every check of the latest readiness run passed.")
    ok = _gauge(
        "readiness_ok", "1 when the check passed (or only warned) in the latest run.", ["check"]
    )
    latency = _gauge(
        "readiness_check_duration_seconds",
        "How long the check took in the latest run.",
        ["check"],
    )
    last = _gauge(
        "readiness_last_run_timestamp_seconds", "When the latest readiness run was recorded."
    )
    if row is not None:
        ready.add_metric([], 1 if row.ok else 0)
        last.add_metric([], row.checked_at.timestamp())
        for check, result in sorted((row.results or {}).items()):
            if not isinstance(result, dict):
                continue
            ok.add_metric([check], 0 if result.get("status") == "fail" else 1)
            if isinstance(result.get("latency_ms"), (int, float)):
                latency.add_metric([check], result["latency_ms"] / 1000.0)
    return [ready, ok, latency, last]


def _heartbeats(now: datetime) -> list[Metric]:
    since = now - timedelta(seconds=settings.MAHTQA_WORKER_DEAD_S)
    rows = Heartbeat.objects.filter(
        Q(source__startswith=WORKER_PREFIX, seen_at__gte=since) | Q(source=BEAT_SOURCE)
    ).values_list("source", "seen_at")
    alive = _gauge(
        "workers_alive",
        "Worker processes whose heartbeat is younger than MAHTQA_WORKER_DEAD_S.",
    )
    beat = _gauge(
        "beat_heartbeat_timestamp_seconds",
        "When a worker last ran the ping task scheduled by beat.",
    )
    workers = 0
    for source, seen_at in rows:
        if source == BEAT_SOURCE:
            beat.add_metric([], seen_at.timestamp())
        else:
            workers += 1
    alive.add_metric([], workers)
    return [alive, beat]


def _model() -> list[Metric]:
    info = _gauge("model_active_info", "The model version serving inference.", ["name", "version"])
    active = model_version_active()
    if active is not None:
        info.add_metric([active.name, active.version], 1)
    return [info]


class DatabaseCollector(Collector):
    """Every MAHT-QA family, evaluated from the database at each scrape."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        yield from _studies(now)
        yield from _queues(now)
        yield from _inference()
        yield from _review(now)
        yield from _issues(now)
        yield from _incidents()
        yield from _readiness()
        yield from _heartbeats(now)
        yield from _model()


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(DatabaseCollector())


def metrics_render() -> tuple[bytes, str]:
    """The exposition body and its content type: always the plain text format (0.0.4),
    the one ``promtool check metrics`` validates (it cannot parse OpenMetrics), so what
    Prometheus scrapes is what the test lints. Every name is a legacy (ASCII) name."""
    return generate_latest(REGISTRY), CONTENT_TYPE_PLAIN_0_0_4


# --- Who may scrape ---------------------------------------------------------------------


@lru_cache(maxsize=8)
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(net.strip(), strict=False) for net in allow if net.strip())


def metrics_ip_allowed(*, ip: str | None, forwarded: bool) -> bool:
    """``ip`` is in ``MAHTQA_METRICS_ALLOW``. A request that came through a proxy we
    were not told about (forwarding headers, ``MAHTQA_PROXY_COUNT`` 0) never passes the
    network rule: behind a local reverse proxy every client would look like 127.0.0.1."""
    if not ip or (forwarded and not settings.MAHTQA_PROXY_COUNT):
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    candidates = [address] if mapped is None else [address, mapped]
    networks = _networks(tuple(settings.MAHTQA_METRICS_ALLOW))
    return any(a in net for a in candidates for net in networks if a.version == net.version)


def metrics_token_valid(*, presented: str) -> bool:
    """``presented`` equals ``MAHTQA_METRICS_TOKEN`` (constant time). No token set: none is."""
    expected = settings.MAHTQA_METRICS_TOKEN
    return bool(expected) and hmac.compare_digest(presented.encode(), expected.encode())
