"""Pages: incidents (list, detail with timeline and response plan, acknowledgement link).

On-call people (reviewers, engineers, admins) see and acknowledge; engineers and admins
move an incident on and write its record; admins open one by hand and run the immediate
actions. The acknowledgement link in a message works without signing in: its signed
token names the incident, and the POST from its page records who it was sent to.
"""

from __future__ import annotations

import re

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import DomainError
from apps.core.exceptions import domain_status
from apps.core.permissions import perm_required
from apps.core.requests import client_ip
from apps.monitoring.choices import (
    ACTIVE_INCIDENT_STATUSES,
    IncidentAction,
    IncidentSeverity,
    IncidentStatus,
    Trigger,
)
from apps.monitoring.selectors import incident_get, incident_list
from apps.monitoring.services.actions import incident_action_run
from apps.monitoring.services.incidents import (
    ack_token_read,
    incident_acknowledge,
    incident_issue_link,
    incident_note_add,
    incident_open,
    incident_record_close,
    incident_status_set,
    monitor_settings_get,
    oncall_levels,
)
from apps.monitoring.services.response_plan import monitor_response_update

VIEW_PERM = ("accounts.review_study", "accounts.triage_issue", "accounts.manage_thresholds")
WORK_PERM = ("accounts.triage_issue", "accounts.manage_thresholds")
ADMIN_PERM = "accounts.manage_thresholds"


def _detail(request: HttpRequest, pk: int, *, error: DomainError | None = None) -> HttpResponse:
    incident = incident_get(pk=pk)
    if incident is None:
        raise Http404
    user = request.user
    context = {
        "incident": incident,
        "active": incident.status in ACTIVE_INCIDENT_STATUSES,
        "levels": oncall_levels(),
        "actions": IncidentAction.choices,
        "can_work": any(user.has_perm(p) for p in WORK_PERM),
        "can_act": user.has_perm(ADMIN_PERM),
        "next_statuses": [
            s
            for s in (IncidentStatus.MITIGATED, IncidentStatus.RESOLVED)
            if incident.status in ACTIVE_INCIDENT_STATUSES and s != incident.status
        ],  # fmt: skip
        "error": error,
    }
    status = domain_status(error) if error else 200
    return render(request, "monitoring/incident.html", context, status=status)


@perm_required(VIEW_PERM)
def incidents_view(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "active")
    trigger = request.GET.get("trigger", "")
    context = {
        "incidents": incident_list(status=status if status != "all" else "", trigger=trigger),
        "status": status,
        "trigger": trigger,
        "statuses": IncidentStatus.choices,
        "triggers": Trigger.choices,
        "severities": IncidentSeverity.choices,
        "can_open": request.user.has_perm(ADMIN_PERM),
        "config": monitor_settings_get(),
        "levels": oncall_levels(),
    }
    return render(request, "monitoring/incidents.html", context)


@require_POST
@perm_required(ADMIN_PERM)
def incident_settings_view(request: HttpRequest) -> HttpResponse:
    """The response plan's settings: automatic review-all, timeout, on-call order."""
    post = request.POST
    try:
        timeout = float(post.get("ack_timeout_minutes", ""))
    except ValueError:
        timeout = -1.0
    levels = [lv.strip() for lv in post.get("oncall_levels", "").split(",") if lv.strip()]
    try:
        monitor_response_update(
            user=request.user, auto_review_all_on_safety=post.get("auto_review_all") == "on",
            ack_timeout_minutes=timeout, oncall_levels=levels, ip=client_ip(request),
        )  # fmt: skip
    except DomainError as exc:
        detail = "; ".join(f"{k}: {v}" for k, v in (exc.details or {}).items())
        messages.error(request, f"{exc.message} {detail}".strip())
        response = incidents_view(request)
        response.status_code = domain_status(exc)
        return response
    messages.success(request, "Response plan saved.")
    return redirect("monitoring:incidents")


@require_POST
@perm_required(ADMIN_PERM)
def incident_open_view(request: HttpRequest) -> HttpResponse:
    try:
        incident = incident_open(
            user=request.user, title=request.POST.get("title", ""),
            summary=request.POST.get("summary", ""),
            severity=request.POST.get("severity", IncidentSeverity.SEV2),
        )  # fmt: skip
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("monitoring:incidents")
    return redirect("monitoring:incident", pk=incident.pk)


@perm_required(VIEW_PERM)
def incident_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk)


def _run(request: HttpRequest, pk: int, fn, done: str) -> HttpResponse:
    if incident_get(pk=pk) is None:
        raise Http404
    try:
        fn()
    except DomainError as exc:
        return _detail(request, pk, error=exc)
    messages.success(request, done)
    return redirect("monitoring:incident", pk=pk)


@require_POST
@perm_required(VIEW_PERM)
def incident_ack_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(
        request, pk, lambda: incident_acknowledge(incident_id=pk, actor=request.user.username),
        "Acknowledged: the escalation has stopped.",
    )  # fmt: skip


@require_POST
@perm_required(ADMIN_PERM)
def incident_action_view(request: HttpRequest, pk: int) -> HttpResponse:
    incident = incident_get(pk=pk)
    if incident is None:
        raise Http404
    action = request.POST.get("action", "")
    try:
        outcome = incident_action_run(
            incident=incident, action=action, user=request.user, ip=client_ip(request)
        )
    except DomainError as exc:
        return _detail(request, pk, error=exc)
    messages.success(request, outcome)
    return redirect("monitoring:incident", pk=pk)


@require_POST
@perm_required(WORK_PERM)
def incident_status_view(request: HttpRequest, pk: int) -> HttpResponse:
    status = request.POST.get("status", "")
    return _run(
        request, pk,
        lambda: incident_status_set(
            incident_id=pk, user=request.user, status=status, note=request.POST.get("note", "")
        ),
        f"Incident marked {status}.",
    )  # fmt: skip


@require_POST
@perm_required(WORK_PERM)
def incident_record_view(request: HttpRequest, pk: int) -> HttpResponse:
    post = request.POST
    return _run(
        request, pk,
        lambda: incident_record_close(
            incident_id=pk, user=request.user, cause=post.get("cause", ""),
            impact=post.get("impact", ""), actions_taken=post.get("actions_taken", ""),
            follow_up=post.get("follow_up", ""),
        ),
        "Post-incident record written; incident closed.",
    )  # fmt: skip


@require_POST
@perm_required(WORK_PERM)
def incident_note_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _run(
        request, pk,
        lambda: incident_note_add(incident_id=pk, user=request.user, text=request.POST.get("text")),
        "Note added to the timeline.",
    )  # fmt: skip


@require_POST
@perm_required(WORK_PERM)
def incident_link_view(request: HttpRequest, pk: int) -> HttpResponse:
    raw = request.POST.get("issue", "").strip().lstrip("#")
    issue_id = int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else 0
    return _run(
        request, pk,
        lambda: incident_issue_link(incident_id=pk, user=request.user, issue_id=issue_id),
        f"Issue #{issue_id} linked.",
    )  # fmt: skip


@require_http_methods(["GET", "POST"])
def incident_ack_link_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link in a message: GET shows what is acknowledged, POST acknowledges (a mail
    scanner following the link acknowledges nothing)."""
    try:
        pk, step = ack_token_read(token=token)
    except DomainError as exc:
        return render(request, "monitoring/ack_link.html", {"error": exc}, status=404)
    incident = incident_get(pk=pk)
    if incident is None:
        return render(request, "monitoring/ack_link.html", {"error": None}, status=404)
    notification = next((n for n in incident.notifications.all() if n.step == step), None)
    level = notification.level if notification else "on-call"
    context = {"incident": incident, "level": level, "token": token, "done": False}
    if request.method == "POST":
        actor = (
            request.user.username
            if request.user.is_authenticated
            else f"link:{level} (step {step + 1})"
        )
        try:
            incident = incident_acknowledge(incident_id=pk, actor=actor)
        except DomainError as exc:
            context["error"] = exc
            return render(request, "monitoring/ack_link.html", context, status=domain_status(exc))
        context.update(incident=incident, done=True)
    return render(request, "monitoring/ack_link.html", context)
