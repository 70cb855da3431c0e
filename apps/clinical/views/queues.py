"""Review queues: radiologists' queue, escalated queue, my claimed cases; next case."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil
from django.views.decorators.http import require_GET, require_POST

from apps.clinical.choices import reason_chip
from apps.clinical.models import ReviewTask
from apps.clinical.review_selectors import (
    AGES,
    QueueFilters,
    review_queue_counts,
    review_queue_list,
)
from apps.clinical.services.review import review_task_claim_next
from apps.clinical.views.common import client_ip
from apps.core.error_pages import domain_error_response
from apps.core.errors import DomainError
from apps.core.htmx import htmx_partial
from apps.core.permissions import perm_required
from apps.models.models import ModelVersion
from mahtqa.cephalometry.plausibility import ORDER_CODES, RANGE_CODES, SHAPE_CODE

PAGE_SIZE = 50
TITLES = {
    "queue": "Review queue",
    "escalated": "Escalated cases",
    "mine": "My claimed cases",
}
# The codes cases really carry: the router's own and the plausibility rules'.
ROUTING_CODES = (
    "low_confidence", "out_of_distribution", "out_of_distribution_site", "spacing_unknown",
    "review_all", "incident_recall",
)  # fmt: skip
FINDING_CODES = (*ROUTING_CODES, *ORDER_CODES, *RANGE_CODES, SHAPE_CODE)


def _queue(request: HttpRequest, scope: str) -> HttpResponse:
    filters = QueueFilters.from_params(request.GET)
    qs = review_queue_list(user=request.user, scope=scope, filters=filters)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    tasks = list(page.object_list)
    prefix = reverse("clinical:review", args=["00000000-0000-0000-0000-000000000000"])
    prefix = prefix.replace("00000000-0000-0000-0000-000000000000/", "")
    for task in tasks:  # precomputed: per-row {% url %} and timesince dominate rendering
        task.row_url = f"{prefix}{task.study.public_id}/"
        task.overdue = task.due_at < now
        task.sla_text = (
            f"overdue by {timesince(task.due_at, now, depth=1)}"
            if task.overdue
            else f"due in {timeuntil(task.due_at, now, depth=1)}"
        )
        task.waiting = timesince(task.created_at, now, depth=1)
        task.chips = [
            (
                reason_chip(r),
                f"{r.get('code', '')}: {r.get('message', '')}",
                r.get("severity", "info"),
            )
            for r in task.reasons
        ]
    context = {
        "scope": scope,
        "title": TITLES[scope],
        "page": page,
        "tasks": tasks,
        "filters": filters,
        "ages": list(AGES),
        "finding_codes": FINDING_CODES,
        "model_versions": ModelVersion.objects.only("id", "name", "version").order_by("-id")[:50],
        "counts": review_queue_counts(user=request.user),
        "now": now,
        "querystring": request.GET.urlencode(),
    }
    return htmx_partial(
        request, "clinical/queue.html", "clinical/partials/queue_table.html", context
    )


@require_GET
@perm_required("accounts.review_study")
def review_queue(request: HttpRequest) -> HttpResponse:
    return _queue(request, "queue")


@require_GET
@perm_required("accounts.work_escalations")
def escalations(request: HttpRequest) -> HttpResponse:
    return _queue(request, "escalated")


@require_GET
@perm_required("accounts.review_study")
def my_cases(request: HttpRequest) -> HttpResponse:
    return _queue(request, "mine")


@require_GET
@perm_required("accounts.review_study")
def queue_counts(request: HttpRequest) -> HttpResponse:
    """The badge numbers, polled by htmx every few seconds."""
    counts = review_queue_counts(user=request.user)
    return render(request, "clinical/partials/queue_counts.html", {"counts": counts})


@require_POST
@perm_required("accounts.review_study")
def next_case(request: HttpRequest) -> HttpResponse:
    escalated = request.POST.get("escalated") == "1"
    back = reverse("clinical:escalations" if escalated else "clinical:review_queue")
    try:
        task = review_task_claim_next(user=request.user, escalated=escalated, ip=client_ip(request))
    except DomainError as exc:
        return domain_error_response(request, exc, back=back)
    if task is None:
        messages.info(request, "The queue is empty.")
        return redirect(back)
    url = reverse("clinical:review", kwargs={"public_id": _public_id(task)})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


def _public_id(task: ReviewTask):
    return task.study.public_id
