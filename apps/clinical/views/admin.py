"""Admin pages in the product: thresholds (versioned) and the audit trail."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.clinical.choices import AuditAction
from apps.clinical.forms import ThresholdsForm
from apps.clinical.models import Site
from apps.clinical.review_selectors import audit_list
from apps.clinical.services.escalation import notifications_current
from apps.clinical.services.policy import risk_summary, routing_policy_current
from apps.clinical.services.sites import (
    site_calibrate,
    site_calibration_decide,
    site_list,
    site_review_all_set,
)
from apps.clinical.services.thresholds import policy_history, thresholds_update
from apps.clinical.views.common import client_ip
from apps.core.error_pages import domain_error_response
from apps.core.errors import DomainError
from apps.core.htmx import htmx_partial
from apps.core.permissions import perm_required


@perm_required("accounts.manage_thresholds")
def thresholds(request: HttpRequest) -> HttpResponse:
    current = routing_policy_current()
    notifications = notifications_current()
    status = 200
    if request.method == "POST":
        form = ThresholdsForm(request.POST)
        if form.is_valid():
            try:
                policy = thresholds_update(
                    user=request.user,
                    changes=form.changes(),
                    note=form.cleaned_data["note"],
                    ip=client_ip(request),
                )
            except DomainError as exc:
                for field, msg in (exc.details or {}).items():
                    form.add_error(field if field in form.fields else None, msg)
                if not exc.details:
                    form.add_error(None, exc.message)
                status = 400
            else:
                messages.success(request, f"Saved as version {policy.version}.")
                return redirect("clinical:thresholds")
        else:
            status = 400
    elif request.method == "GET":
        form = ThresholdsForm.from_policy(current, notifications)
    else:
        return HttpResponse(status=405)
    context = {
        "form": form,
        "current": current,
        "history": policy_history(limit=30),
        "risk": risk_summary(policy=current),
        "sites": site_list(),
        "proposals": {s.key: s.proposal for s in Site.objects.exclude(proposal=None)},
    }
    return render(request, "clinical/thresholds.html", context, status=status)


@perm_required("accounts.view_audit")
def audit(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return HttpResponse(status=405)
    action = request.GET.get("action", "")
    action = action if action in AuditAction.values else ""
    actor = request.GET.get("actor", "")[:150]
    page = Paginator(audit_list(action=action, actor=actor), 100).get_page(request.GET.get("page"))
    context = {"page": page, "actions": AuditAction.choices, "action": action, "actor": actor}
    return htmx_partial(
        request, "clinical/audit.html", "clinical/partials/audit_table.html", context
    )


def _site(key: str) -> Site:
    site = Site.objects.filter(key=key).first()
    if site is None:
        raise Http404
    return site


@require_POST
@perm_required("accounts.manage_thresholds")
def site_action(request: HttpRequest, key: str, action: str) -> HttpResponse:
    """calibrate (propose), accept, reject, review-all on/off: all on the thresholds page."""
    site = _site(key)
    ip = client_ip(request)
    try:
        if action == "calibrate":
            site_calibrate(site=site, user=request.user)
            messages.success(request, f"Proposal for {site.key}: see the sites table.")
        elif action in ("accept", "reject"):
            site_calibration_decide(site=site, accept=action == "accept", user=request.user, ip=ip)
            messages.success(request, f"{site.key}: proposal {action}ed.")
        elif action == "review-all":
            on = request.POST.get("on") == "1"
            site_review_all_set(site=site, review_all=on, user=request.user, ip=ip)
            messages.success(request, f"{site.key}: review all {'on' if on else 'off'}.")
        else:
            raise Http404
    except DomainError as exc:
        return domain_error_response(request, exc, back=reverse("clinical:thresholds") + "#sites")
    return redirect(reverse("clinical:thresholds") + "#sites")
