"""Pages: the model registry (engineers and admins; activation by admins)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.core.errors import DomainError
from apps.core.exceptions import domain_status
from apps.core.htmx import htmx_partial, is_htmx_partial
from apps.core.permissions import perm_required
from apps.models.models import ModelVersion
from apps.models.selectors import model_version_active, model_version_list, model_version_previous
from apps.models.services import (
    MANAGE_PERM,
    REGISTER_PERMS,
    model_version_activate,
    model_version_rollback,
)


def _render_list(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    context = {
        "model_versions": model_version_list(),
        "can_manage": request.user.has_perm(MANAGE_PERM),
    }
    return htmx_partial(
        request, "models/list.html", "models/partials/table.html", context, status=status
    )


@perm_required(REGISTER_PERMS)
def model_version_list_view(request: HttpRequest) -> HttpResponse:
    return _render_list(request)


def _after_change(request: HttpRequest) -> HttpResponse:
    if is_htmx_partial(request):
        return _render_list(request)
    return redirect("models:list")


@require_POST
@perm_required(MANAGE_PERM)
def model_version_activate_view(request: HttpRequest, pk: int) -> HttpResponse:
    """A refusal (the release gate, with the failed gates and their figures) is shown on
    the registry itself: in the table fragment for htmx (200: htmx 2 swaps no 4xx body),
    otherwise on the full page with the error's status."""
    model_version = get_object_or_404(ModelVersion, pk=pk)
    try:
        model_version_activate(model_version=model_version, user=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return _render_list(request, status=200 if is_htmx_partial(request) else domain_status(exc))
    messages.success(request, f"{model_version} is now active.")
    return _after_change(request)


@require_http_methods(["GET", "POST"])
@perm_required(MANAGE_PERM)
def model_version_rollback_view(request: HttpRequest) -> HttpResponse:
    """GET: what a rollback would change, and a button to confirm it. POST: do it.
    A refusal is shown on this page, in the error style, not later on another one."""
    current = model_version_active()
    context = {"current": current, "previous": model_version_previous(exclude=current)}
    if request.method == "GET":
        return render(request, "models/rollback.html", context)
    try:
        model_version = model_version_rollback(user=request.user)
    except DomainError as exc:
        context["error"] = exc
        return render(request, "models/rollback.html", context, status=domain_status(exc))
    messages.success(request, f"Rolled back to {model_version}.")
    return redirect("models:list")
