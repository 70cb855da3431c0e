"""Pages: triage board, issue page, report form, metrics, settings. Thin: call services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.clinical.selectors import study_get
from apps.core.errors import DomainError, InvalidInput
from apps.core.htmx import htmx_partial, is_htmx_partial
from apps.core.permissions import perm_required
from apps.datasets.selectors import dataset_version_get
from apps.issues import metrics
from apps.issues.choices import Category, Severity, Source, Status
from apps.issues.forms import IssueReportForm, IssueSettingsForm
from apps.issues.models import Issue, Occurrence
from apps.issues.selectors import (
    SORTS,
    IssueFilters,
    issue_get,
    issue_list,
    issue_occurrences,
    issue_timeline,
)
from apps.issues.services import (
    issue_bulk_update,
    issue_comment,
    issue_merge,
    issue_report,
    issue_settings_get,
    issue_similar_find,
    issue_triage,
    occurrence_split,
    similar_resolved_find,
)
from apps.issues.services.triage import UNCHANGED, assignable_users
from apps.models.selectors import model_version_find

VIEW_PERMS = ("accounts.report_issue", "accounts.triage_issue")
REPORT_PERM = "accounts.report_issue"
TRIAGE_PERM = "accounts.triage_issue"
SETTINGS_PERM = "accounts.manage_thresholds"
PAGE_SIZE = 50


def _choices_context() -> dict:
    return {
        "categories": Category.choices,
        "severities": Severity.choices,
        "statuses": Status.choices,
        "sorts": list(SORTS),
    }


def _board_context(request: HttpRequest, query: QueryDict) -> dict:
    filters = IssueFilters.from_query(query)
    page = Paginator(issue_list(filters=filters, user=request.user), PAGE_SIZE).get_page(
        query.get("page")
    )
    can_triage = request.user.has_perm(TRIAGE_PERM)
    return {
        "page": page,
        "issues": list(page.object_list),
        "filters": filters,
        "query": query.urlencode(),
        "now": timezone.now(),
        "can_triage": can_triage,
        "assignees": list(assignable_users()) if can_triage else [],
        **_choices_context(),
    }


@perm_required(VIEW_PERMS)
def issue_board_view(request: HttpRequest) -> HttpResponse:
    context = _board_context(request, request.GET)
    return htmx_partial(request, "issues/board.html", "issues/partials/board.html", context)


def _assignee_arg(request: HttpRequest):
    if "assignee" not in request.POST:
        return UNCHANGED
    username = request.POST["assignee"]
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise InvalidInput("invalid_assignee", "No such user.")
    return user


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


@require_POST
@perm_required(TRIAGE_PERM)
def issue_triage_view(request: HttpRequest, pk: int) -> HttpResponse:
    issue = get_object_or_404(Issue, pk=pk)
    error = ""
    try:
        issue = issue_triage(
            issue=issue, actor=request.user, severity=request.POST.get("severity") or None,
            status=request.POST.get("status") or None, assignee=_assignee_arg(request),
            resolution_note=request.POST.get("resolution_note", ""),
        )  # fmt: skip
    except DomainError as exc:
        error = exc.message
    if is_htmx_partial(request):
        issue = issue_list(filters=IssueFilters(status="all")).get(pk=issue.pk)
        context = {
            "issue": issue, "now": timezone.now(), "can_triage": True, "row_error": error,
            "assignees": list(assignable_users()), **_choices_context(),
        }  # fmt: skip
        return render(request, "issues/partials/row.html", context, status=409 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, f"Issue #{issue.pk} updated.")
    return redirect(_safe_next(request, reverse("issues:detail", args=[issue.pk])))


@perm_required(TRIAGE_PERM)
def issue_bulk_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":  # a bookmarked or typed URL: the board, not a blank 405
        return redirect("issues:list")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()]
    action = request.POST.get("action", "")
    value = request.POST.get("value", "")
    kwargs: dict = {}
    try:
        if action == "severity":
            kwargs["severity"] = value
        elif action == "status":
            kwargs["status"] = value
        elif action == "assignee":
            kwargs["assignee"] = (
                get_user_model().objects.filter(username=value).first() if value else None
            )
        else:
            raise InvalidInput("invalid_action", "Choose a bulk action.")
        if not ids:
            raise InvalidInput("no_selection", "Select at least one issue.")
        result = issue_bulk_update(issue_ids=ids, actor=request.user, **kwargs)
        messages.success(request, f"{len(result['updated'])} issue(s) updated.")
        for pk, message in result["errors"].items():
            messages.error(request, f"#{pk}: {message}")
    except DomainError as exc:
        messages.error(request, exc.message)
    query = QueryDict(request.POST.get("return_query", ""))
    if is_htmx_partial(request):
        context = _board_context(request, query)
        return render(request, "issues/partials/board.html", context)
    return redirect(f"{reverse('issues:list')}?{query.urlencode()}")


@perm_required(VIEW_PERMS)
def issue_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        issue = issue_get(pk=pk)
    except Issue.DoesNotExist as exc:
        raise Http404("No such issue.") from exc
    context = {
        "issue": issue,
        "steps": list(issue.steps.all()),
        "timeline": issue_timeline(issue=issue),
        "occurrences": list(issue_occurrences(issue=issue)),
        "similar": issue_similar_find(issue=issue),
        "now": timezone.now(),
        "can_triage": request.user.has_perm(TRIAGE_PERM),
        "assignees": list(assignable_users()),
        **_choices_context(),
    }
    return render(request, "issues/detail.html", context)


@require_POST
@perm_required(VIEW_PERMS)
def issue_comment_view(request: HttpRequest, pk: int) -> HttpResponse:
    issue = get_object_or_404(Issue, pk=pk)
    try:
        issue_comment(issue=issue, actor=request.user, text=request.POST.get("text", ""))
    except DomainError as exc:
        messages.error(request, exc.message)
    if is_htmx_partial(request):
        context = {"issue": issue, "timeline": issue_timeline(issue=issue)}
        return render(request, "issues/partials/timeline.html", context)
    return redirect("issues:detail", pk=issue.pk)


@require_POST
@perm_required(TRIAGE_PERM)
def issue_merge_view(request: HttpRequest, pk: int) -> HttpResponse:
    source = get_object_or_404(Issue, pk=pk)
    target_id = request.POST.get("target", "").lstrip("#")
    target = Issue.objects.filter(pk=int(target_id)).first() if target_id.isdigit() else None
    if target is None:
        messages.error(request, "Give the number of the issue to merge into.")
        return redirect("issues:detail", pk=source.pk)
    try:
        issue_merge(source=source, target=target, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("issues:detail", pk=source.pk)
    messages.success(request, f"#{source.pk} merged into #{target.pk}.")
    return redirect("issues:detail", pk=target.pk)


@require_POST
@perm_required(TRIAGE_PERM)
def occurrence_split_view(request: HttpRequest, pk: int) -> HttpResponse:
    occurrence = get_object_or_404(Occurrence, pk=pk)
    try:
        new = occurrence_split(occurrence=occurrence, actor=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("issues:detail", pk=occurrence.issue_id)
    messages.success(request, f"Occurrence split out into #{new.pk}.")
    return redirect("issues:detail", pk=new.pk)


@perm_required(REPORT_PERM)
def issue_create_view(request: HttpRequest) -> HttpResponse:
    # "Start an issue about this study" links here with ?study=<public id>.
    initial = {
        k: request.GET[k]
        for k in ("study", "model_version", "dataset_name", "dataset_version")
        if k in request.GET
    }
    form = IssueReportForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        study = study_get(user=request.user, public_id=data["study"]) if data["study"] else None
        model_version = (
            model_version_find(ref=str(data["model_version"])) if data["model_version"] else None
        )
        dataset_version = (
            dataset_version_get(pk=data["dataset_version"]) if data["dataset_version"] else None
        )
        if data["study"] and study is None:
            form.add_error("study", "No study with that id.")
        elif data["dataset_version"] and dataset_version is None:
            form.add_error("dataset_version", "No such dataset version.")
        elif data["model_version"] and model_version is None:
            form.add_error("model_version", "No such model version.")
        else:
            issue, created = issue_report(
                title=data["title"], category=data["category"], severity=data["severity"],
                description=data["description"], reproduction_steps=form.steps(),
                dataset_name=data["dataset_name"], dataset_version=dataset_version, study=study,
                model_version=model_version, reporter=request.user, source=Source.WEB,
            )  # fmt: skip
            if created:
                messages.success(request, f"Issue #{issue.pk} reported.")
            else:
                messages.info(request, f"Same as issue #{issue.pk}: counted as an occurrence.")
            return redirect("issues:detail", pk=issue.pk)
    return render(request, "issues/new.html", {"form": form})


@perm_required(VIEW_PERMS)
def issue_similar_view(request: HttpRequest) -> HttpResponse:
    """Resolved issues like the report being typed (the report form asks as you type;
    without JavaScript this is a search page). Nothing typed here is stored."""
    title = request.GET.get("title", "")[:200]
    description = request.GET.get("description", "")[:2000]
    searched = bool(title.strip() or description.strip())
    context = {
        "title": title,
        "description": description,
        "searched": searched,
        "similar": similar_resolved_find(title=title, description=description) if searched else [],
    }
    return htmx_partial(request, "issues/similar.html", "issues/partials/similar.html", context)


@perm_required(TRIAGE_PERM)
def issue_metrics_view(request: HttpRequest) -> HttpResponse:
    return render(request, "issues/metrics.html", metrics.metrics_page_context())


@perm_required(SETTINGS_PERM)
def issue_settings_view(request: HttpRequest) -> HttpResponse:
    row = issue_settings_get()
    form = IssueSettingsForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        saved.updated_by = request.user
        saved.save()
        messages.success(request, "Issue settings saved. New due times apply to new issues.")
        return redirect("issues:settings")
    return render(request, "issues/settings.html", {"form": form, "row": row})
