"""The study list (clinicians identified, engineers de-identified)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from apps.clinical.choices import StudyStatus
from apps.clinical.models import Study
from apps.clinical.selectors import study_visibility
from apps.clinical.views.common import PHI_OR_DEID
from apps.core.permissions import perm_required


@require_GET
@perm_required(PHI_OR_DEID)
def study_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    qs = Study.objects.only(
        "public_id", "status", "received_at", "modality", "patient_pseudonym",
        "sop_instance_uid", "deid_sop_instance_uid",
    ).order_by("-received_at", "-id")  # fmt: skip
    if status in StudyStatus.values:
        qs = qs.filter(status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "identified": study_visibility(request.user) == "phi",
        "statuses": StudyStatus.choices,
        "status": status,
    }
    return render(request, "clinical/studies.html", context)
