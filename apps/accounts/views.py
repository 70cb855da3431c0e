"""Pages: home. Login/logout are Django's auth views (see urls.py)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.core.permissions import perm_required


@perm_required(None)
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/home.html", {"role": request.user.role})
