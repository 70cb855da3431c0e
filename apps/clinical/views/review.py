"""The review screen: radiograph, landmark overlay, live recomputation, decisions."""

from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, Resolver404, resolve, reverse
from django.utils import timezone
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from apps.clinical.choices import AuditAction, TaskStatus, reason_chip, reason_label
from apps.clinical.models import ReviewTask, Study
from apps.clinical.review_selectors import case_timeline
from apps.clinical.selectors import (
    study_get,
    study_latest_prediction,
    study_latest_review,
    study_patient_card,
    study_visibility,
)
from apps.clinical.services.audit import audit_record
from apps.clinical.services.escalation import escalation_audience, review_task_escalate
from apps.clinical.services.images import SIZES, study_png
from apps.clinical.services.review import (
    confirmation_reasons,
    landmarks_clean,
    may_take_over,
    review_decide,
    review_recompute,
    review_task_claim,
    review_task_claim_next,
    review_task_release,
    review_task_take_over,
    review_task_touch,
)
from apps.clinical.views.common import PHI_OR_DEID, client_ip
from apps.core.error_pages import domain_error_fragment, domain_error_response
from apps.core.errors import DomainError, InvalidInput
from apps.core.navigation import user_has_perm
from apps.core.permissions import perm_required


def _study(request: HttpRequest, public_id) -> Study:
    study = study_get(user=request.user, public_id=public_id)
    if study is None:
        raise Http404
    return study


def issue_link(study: Study) -> str | None:
    """The issue tracker's form, prefilled with the study, once that URL exists."""
    try:
        url = reverse("issues:new")
    except NoReverseMatch:
        try:
            resolve("/issues/new/")
            url = "/issues/new/"
        except Resolver404:
            return None
    return f"{url}?study={study.public_id}"


def _findings_by_landmark(findings: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in findings:
        for abbr in f.get("landmarks", []):
            out.setdefault(abbr, []).append({**f, "label": reason_label(f["code"])})
    return out


def _why_here(reasons: list[dict]) -> list[dict]:
    """The routing reasons as labelled chips; findings' sentences stay under Findings."""
    return [{**r, "label": reason_chip(r)} for r in reasons]


@require_GET
@perm_required(PHI_OR_DEID)
def review(request: HttpRequest, public_id) -> HttpResponse:
    study = _study(request, public_id)
    visibility = study_visibility(request.user)
    identified = visibility == "phi"
    task = ReviewTask.objects.filter(study=study).select_related("claimed_by").first()
    prediction = study_latest_prediction(study)
    can_work = (
        identified
        and user_has_perm(request.user, "accounts.review_study")
        and task is not None
        and task.status == TaskStatus.CLAIMED
        and task.claimed_by_id == request.user.pk
    )
    audit_record(
        actor=request.user,
        action=AuditAction.CASE_OPEN_PHI if identified else AuditAction.CASE_OPEN_DEID,
        target_type="study",
        target_id=str(study.public_id),
        ip=client_ip(request),
        details={"read_only": not can_work, "identity_shown": identified},
    )
    if can_work:
        review_task_touch(user=request.user, task=task)
    last_review = study_latest_review(study)
    landmarks = (
        (last_review.landmarks_after or last_review.landmarks_before)
        if last_review
        else (prediction.landmarks if prediction else [])
    )
    findings = prediction.findings if prediction else []
    card = study_patient_card(study=study) if identified else None
    holder = task.claimed_by if task is not None and task.status == TaskStatus.CLAIMED else None
    context = {
        "study": study,
        "identified": identified,
        "task": task,
        "prediction": prediction,
        "last_review": last_review,
        "landmarks": landmarks,
        "landmarks_json": json.dumps(landmarks),
        "measurements": prediction.measurements if prediction else {},
        "findings": findings,
        "findings_by_landmark": _findings_by_landmark(findings),
        "why_here": _why_here(task.reasons if task else []),
        "patient": card,
        "confirm_reasons": confirmation_reasons(task=task) if can_work else [],
        "can_take_over": (
            identified
            and holder is not None
            and holder.pk != request.user.pk
            and may_take_over(request.user)
        ),  # fmt: skip
        "image_urls": {size: _image_url(study, size) for size in SIZES},
        "can_work": can_work,
        "can_claim": (
            identified
            and task is not None
            and task.status == TaskStatus.OPEN
            and user_has_perm(request.user, "accounts.review_study")
        ),  # fmt: skip
        "timeline": case_timeline(study=study),
        "issue_link": issue_link(study),
        "now": timezone.now(),
    }
    return render(request, "clinical/review.html", context)


def _image_url(study: Study, size: str) -> str:
    url = reverse("clinical:review_image", kwargs={"public_id": study.public_id})
    # the content hash in the URL lets the browser cache each rendition for good
    return f"{url}?size={size}&v={study.file_sha256[:12]}"


@require_GET
@perm_required(PHI_OR_DEID)
@cache_control(private=True, max_age=86400)
def review_image(request: HttpRequest, public_id) -> HttpResponse:
    """The de-identified pixels as PNG (no PHI in the pixels' metadata);
    ``?size=preview`` is the downscaled rendition shown first."""
    study = _study(request, public_id)
    size = request.GET.get("size", "full")
    if size not in SIZES:
        raise Http404
    return HttpResponse(study_png(study=study, size=size), content_type="image/png")


@require_POST
@perm_required(("accounts.work_escalations", "accounts.manage_thresholds"))
def take_over(request: HttpRequest, public_id) -> HttpResponse:
    study = _study(request, public_id)
    back = reverse("clinical:review", kwargs={"public_id": study.public_id})
    if study_visibility(request.user) != "phi":
        raise PermissionDenied
    try:
        review_task_take_over(
            user=request.user, study=study, reason=request.POST.get("reason", ""),
            ip=client_ip(request),
        )  # fmt: skip
    except DomainError as exc:
        return domain_error_response(request, exc, back=back)
    messages.success(request, "You hold this case now; the timeline records the take-over.")
    return redirect(back)


@require_POST
@perm_required("accounts.review_study")
def claim(request: HttpRequest, public_id) -> HttpResponse:
    study = _study(request, public_id)
    back = reverse("clinical:review", kwargs={"public_id": study.public_id})
    try:
        review_task_claim(user=request.user, study=study, ip=client_ip(request))
    except DomainError as exc:
        return domain_error_response(request, exc, back=reverse("clinical:review_queue"))
    return redirect(back)


@require_POST
@perm_required("accounts.review_study")
def release(request: HttpRequest, public_id) -> HttpResponse:
    study = _study(request, public_id)
    try:
        review_task_release(user=request.user, study=study)
    except DomainError as exc:
        return domain_error_response(request, exc, back=reverse("clinical:review_queue"))
    messages.info(request, "The case is back in the queue.")
    return redirect("clinical:review_queue")


def _landmarks_param(request: HttpRequest):
    try:
        return json.loads(request.POST.get("landmarks", ""))
    except ValueError:
        raise InvalidInput("invalid_landmarks", "landmarks must be JSON.") from None


@require_POST
@perm_required("accounts.review_study")
def recompute(request: HttpRequest, public_id) -> HttpResponse:
    """Measurements and findings for the landmarks as they are on screen (htmx fragment)."""
    study = _study(request, public_id)
    task = ReviewTask.objects.filter(study=study).select_related("prediction").first()
    if task is None:
        raise Http404
    try:
        rows = landmarks_clean(
            raw=_landmarks_param(request), study=study, before=task.prediction.landmarks
        )
    except DomainError as exc:
        return domain_error_fragment(request, exc)
    measurements, findings = review_recompute(study=study, landmarks=rows)
    review_task_touch(user=request.user, task=task)
    return render(
        request,
        "clinical/partials/analysis.html",
        {
            "measurements": measurements,
            "findings": findings,
            "findings_by_landmark": _findings_by_landmark(findings),
            "landmarks": rows,
            "recomputed": True,
        },
    )


@require_POST
@perm_required("accounts.review_study")
def decide(request: HttpRequest, public_id) -> HttpResponse:
    study = _study(request, public_id)
    if study_visibility(request.user) != "phi":
        raise PermissionDenied
    action = request.POST.get("action", "")
    back = reverse("clinical:review", kwargs={"public_id": study.public_id})
    ip = client_ip(request)
    reason = request.POST.get("reason", "")
    short = str(study.public_id)[:8]
    try:
        if action == "escalate":
            task = review_task_escalate(user=request.user, study=study, reason=reason, ip=ip)
            audience = escalation_audience(level=task.level)
            level = task.get_level_display()
            (messages.warning if audience.nobody else messages.success)(
                request, f"Case {short} escalated to {level}. {audience.summary()}"
            )
        else:
            raw = _landmarks_param(request) if action == "accept" else None
            result = review_decide(
                user=request.user, study=study, action=action, landmarks_raw=raw,
                reason=reason, confirmed=request.POST.get("confirmed") == "1", ip=ip,
            )  # fmt: skip
            messages.success(request, f"Case {short} {result.get_outcome_display().lower()}.")
    except DomainError as exc:
        return domain_error_response(request, exc, back=back)
    return _go_next(request, escalated=request.POST.get("from") == "escalated")


def _go_next(request: HttpRequest, *, escalated: bool) -> HttpResponse:
    """After a decision: the next case of the same queue, claimed; the queue when empty."""
    queue = reverse("clinical:escalations" if escalated else "clinical:review_queue")
    try:
        task = review_task_claim_next(user=request.user, escalated=escalated, ip=client_ip(request))
    except DomainError:
        task = None
    if task is None:
        messages.info(request, "No more cases waiting in this queue.")
        url = queue
    else:
        url = reverse("clinical:review", kwargs={"public_id": task.study.public_id})
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)
