"""Pages: registry, version, validation report (live progress), per-image view,
suspect annotations, data-loading profile, exports. Engineers and admins only."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from apps.core.errors import DomainError
from apps.core.exceptions import domain_status
from apps.core.htmx import htmx_partial
from apps.core.permissions import perm_required
from apps.core.requests import client_ip
from apps.datasets import selectors, services
from apps.datasets.choices import SuspectStatus
from apps.datasets.presenters import report_context, run_export_rows
from apps.datasets.services.images import image_png, image_thumbnail
from apps.models.selectors import model_version_active
from mahtqa.cephalometry.landmarks import ABBREVIATIONS

PERMS = ("accounts.register_model", "accounts.manage_models")


def _version(pk: int):
    version = selectors.dataset_version_get(pk=pk)
    if version is None:
        raise Http404("No such dataset version.")
    return version


def _run(pk: int):
    run = selectors.validation_run_get(pk=pk)
    if run is None:
        raise Http404("No such validation run.")
    return run


@perm_required(PERMS)
def dataset_list_view(request: HttpRequest) -> HttpResponse:
    return render(request, "datasets/list.html", {"datasets": selectors.dataset_list()})


@require_POST
@perm_required(PERMS)
def dataset_register_view(request: HttpRequest) -> HttpResponse:
    data, upload = request.POST, request.FILES.get("file")
    fields = {
        "name": data.get("name", ""),
        "layout": data.get("layout", ""),
        "spacing": data.get("spacing", ""),
        "notes": data.get("notes", ""),
        "user": request.user,
    }
    try:
        if upload is not None:
            version = services.dataset_register_zip(upload=upload, filename=upload.name, **fields)
        else:
            version = services.dataset_register_folder(path=data.get("path", ""), **fields)
    except DomainError as exc:
        context = {"datasets": selectors.dataset_list(), "error": exc, "form": data}
        return render(request, "datasets/list.html", context, status=domain_status(exc))
    messages.success(request, f"Registered {version.label}: {version.image_count} images.")
    return redirect("datasets:version", pk=version.pk)


@perm_required(PERMS)
def dataset_version_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    context = {
        "version": version,
        "run": selectors.validation_run_latest(version=version),
        "profile": selectors.profile_run_latest(version=version),
        "suspects_open": version.suspects.filter(status=SuspectStatus.OPEN).count(),
        "suspects_confirmed": version.suspects.filter(status=SuspectStatus.CONFIRMED).count(),
        "active_model": model_version_active(),
        "children": version.children.all(),
    }
    return render(request, "datasets/version.html", context)


@require_POST
@perm_required(PERMS)
def validation_run_start_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    try:
        run = services.validation_run_start(
            version=version,
            user=request.user,
            consistency_mm=float(request.POST.get("consistency_mm") or 2.0),
        )
    except (DomainError, ValueError) as exc:
        messages.error(request, getattr(exc, "message", "The threshold is a number of mm."))
        return redirect("datasets:version", pk=pk)
    return redirect("datasets:run", pk=run.pk)


@perm_required(PERMS)
def validation_run_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    context = report_context(run=run, params=request.GET)
    page = Paginator(context.pop("findings_qs"), 50).get_page(request.GET.get("page"))
    context["findings"] = page
    return htmx_partial(request, "datasets/run.html", "datasets/partials/run_body.html", context)


@require_GET
@perm_required(PERMS)
def validation_run_export_view(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    if fmt not in ("csv", "json"):
        raise Http404("Export as .csv or .json.")
    run = _run(pk)
    rows = run_export_rows(run=run)
    name = f"validation-{run.version.dataset.name}-v{run.version.number}-run{run.pk}".replace(
        " ", "_"
    )
    if fmt == "json":
        body = {
            "run": run.pk,
            "version": run.version_id,
            "status": run.status,
            "summary": run.summary,
            "counts": run.counts,
            "findings": rows,
        }
        response = JsonResponse(body, json_dumps_params={"indent": 1})
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(
            buf, fieldnames=["severity", "code", "image", "landmark", "annotator", "message"]
        )
        writer.writeheader()
        writer.writerows(rows)
        response = HttpResponse(buf.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@perm_required(PERMS)
def image_view(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    version = _version(pk)
    image = selectors.image_get(version=version, key=key)
    if image is None:
        raise Http404("No such image in this version.")
    run = selectors.validation_run_latest(version=version)
    check = selectors.image_check_get(run=run, image=image)
    points = [
        {
            "annotator": a,
            "n": n,
            "points": [
                {"name": name, "xy": p} for name, p in zip(ABBREVIATIONS, pts, strict=False)
            ],
        }
        for n, (a, pts) in enumerate(sorted(image.annotations.items()))
    ]
    context = {
        "version": version,
        "image": image,
        "check": check,
        "run": run,
        "annotators": points,
        "findings": selectors.image_findings(run=run, image=image),
        "suspects": image.suspects.all(),
    }
    return render(request, "datasets/image.html", context)


@require_GET
@perm_required(PERMS)
def image_file_view(request: HttpRequest, pk: int, key: str) -> HttpResponse:
    version = _version(pk)
    image = selectors.image_get(version=version, key=key)
    if image is None:
        raise Http404("No such image in this version.")
    if request.GET.get("thumb"):
        body = image_thumbnail(
            version=version,
            image=image,
            landmark=request.GET.get("landmark", ""),
            crop=request.GET.get("crop") == "1",
            suspect_id=request.GET.get("suspect"),
        )
    else:
        body = image_png(version=version, image=image)
    if body is None:
        raise Http404("The image file is missing or does not decode.")
    response = HttpResponse(body, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@perm_required(PERMS)
def suspect_list_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    status = request.GET.get("status", SuspectStatus.OPEN)
    context = {
        "version": version,
        "status": status,
        "statuses": SuspectStatus.choices,
        "suspects": Paginator(selectors.suspect_list(version=version, status=status), 24).get_page(
            request.GET.get("page")
        ),
        "active_model": model_version_active(),
    }
    return render(request, "datasets/suspects.html", context)


@require_POST
@perm_required(PERMS)
def suspect_find_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    try:
        if request.POST.get("oof"):
            n = services.suspects_find_from_oof(version=version, path=request.POST["oof"])
        else:
            active = model_version_active()
            if active is None:
                raise DomainError(
                    "no_active_model", "No model is active; give an out-of-fold file."
                )
            predictions = services.predictions_from_model(version=version, model_version=active)
            n = services.suspects_find(
                version=version, predictions=predictions, source=f"model:{active}"
            )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:suspects", pk=pk)
    messages.success(request, f"{n} suspect annotation(s) from this source.")
    return redirect("datasets:suspects", pk=pk)


@require_POST
@perm_required(PERMS)
def suspect_decide_view(request: HttpRequest, pk: int, suspect_id: int) -> HttpResponse:
    version = _version(pk)
    suspect = version.suspects.filter(pk=suspect_id).select_related("image").first()
    if suspect is None:
        raise Http404("No such suspect.")
    try:
        suspect = services.suspect_decide(
            suspect=suspect,
            decision=request.POST.get("decision", ""),
            user=request.user,
            note=request.POST.get("note", ""),
            ip=client_ip(request),
        )
        status = 200
    except DomainError as exc:
        status, suspect.error = domain_status(exc), exc.message
    context = {"version": version, "s": suspect}
    return htmx_partial(
        request,
        "datasets/suspect_card_page.html",
        "datasets/partials/suspect_card.html",
        context,
        status=status,
    )


@require_POST
@perm_required(PERMS)
def dataset_version_correct_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    try:
        derived = services.dataset_version_correct(
            version=version, user=request.user, ip=client_ip(request)
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:suspects", pk=pk)
    messages.success(request, f"Created {derived.label} with the confirmed corrections.")
    return redirect("datasets:version", pk=derived.pk)


@require_GET
@perm_required(PERMS)
def annotations_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    response = HttpResponse(
        services.annotations_zip(version=version), content_type="application/zip"
    )
    name = f"{version.dataset.name}-v{version.number}-annotations.zip".replace(" ", "_")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_POST
@perm_required(PERMS)
def profile_run_start_view(request: HttpRequest, pk: int) -> HttpResponse:
    version = _version(pk)
    try:
        run = services.profile_run_start(
            version=version,
            user=request.user,
            batch_sizes=request.POST.get("batch_sizes", "1,4,8").split(","),
            num_workers=request.POST.get("num_workers", "0,1,2").split(","),
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("datasets:version", pk=pk)
    return redirect("datasets:profile", pk=run.pk)


@perm_required(PERMS)
def profile_run_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = selectors.profile_run_get(pk=pk)
    if run is None:
        raise Http404("No such profile.")
    context = {
        "run": run,
        "version": run.version,
        "report": run.report or None,
        "report_json": json.dumps(run.report, indent=1) if run.report else "",
    }
    return htmx_partial(
        request, "datasets/profile.html", "datasets/partials/profile_body.html", context
    )
