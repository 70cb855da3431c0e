"""Role-aware navigation: the ONE list of nav entries.

Each entry is ``(label, url_name, required_perm)``; ``required_perm`` is None
(any signed-in user), a permission string, or a tuple meaning "any of".
Entries whose URL name does not resolve (an app not installed yet) are
skipped, so apps can add their line here before their URLs exist.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

Perm = str | tuple[str, ...] | None

NAV_ITEMS: list[tuple[str, str, Perm]] = [
    ("Home", "home", None),
    ("Review queue", "clinical:review_queue", "accounts.review_study"),
    ("Escalations", "clinical:escalations", "accounts.work_escalations"),
    ("My cases", "clinical:my_cases", "accounts.review_study"),
    ("Studies", "clinical:study_list", ("accounts.view_phi", "accounts.view_deidentified")),
    ("Issues", "issues:list", ("accounts.report_issue", "accounts.triage_issue")),
    ("Datasets", "datasets:list", ("accounts.register_model", "accounts.manage_models")),
    ("Models", "models:list", ("accounts.register_model", "accounts.manage_models")),
    ("Training runs", "models:runs", ("accounts.register_model", "accounts.manage_models")),
    ("Evaluations", "models:evaluations", ("accounts.register_model", "accounts.manage_models")),
    ("Workers", "monitoring:workers", ("accounts.register_model", "accounts.manage_models")),
    ("Thresholds", "clinical:thresholds", "accounts.manage_thresholds"),
    ("Monitoring", "monitoring:dashboard", ("accounts.triage_issue", "accounts.manage_thresholds")),
    (
        "Incidents",
        "monitoring:incidents",
        ("accounts.review_study", "accounts.triage_issue", "accounts.manage_thresholds"),
    ),  # fmt: skip
    ("Audit log", "clinical:audit", "accounts.view_audit"),
    ("API docs", "api-docs", ("accounts.submit_study", "accounts.register_model")),
    ("Admin", "admin:index", "accounts.manage_users"),
]


def user_has_perm(user: Any, perm: Perm) -> bool:
    if perm is None:
        return True
    perms = (perm,) if isinstance(perm, str) else perm
    return any(user.has_perm(p) for p in perms)


def nav_items_for(*, user: Any, current_path: str = "") -> list[dict[str, Any]]:
    if not getattr(user, "is_authenticated", False):
        return []
    items = []
    for label, url_name, perm in NAV_ITEMS:
        if not user_has_perm(user, perm):
            continue
        try:
            url = reverse(url_name)
        except NoReverseMatch:
            continue
        active = current_path == url or (url != "/" and current_path.startswith(url))
        items.append({"label": label, "url": url, "active": active})
    return items


def navigation(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: ``nav_items``."""
    user = getattr(request, "user", None)
    return {"nav_items": nav_items_for(user=user, current_path=request.path) if user else []}
