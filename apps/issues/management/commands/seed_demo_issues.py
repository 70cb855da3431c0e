"""Demo issues for `make demo`: every category and severity, repeats, a recurrence, overdue ones.

Idempotent: does nothing when the demo issues exist.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from apps.issues.choices import Source, Status
from apps.issues.models import Issue
from apps.issues.services import issue_comment, issue_report, issue_triage
from apps.monitoring.services import readiness_demo_seed

# (title, category, severity, exception type, repeats, age hours, final status)
DEMO = [
    (
        "CUDA out of memory in MAHT-Net forward pass (batch 8, 512x512)",
        "training",
        "critical",
        "torch.OutOfMemoryError",
        14,
        30,
        Status.IN_PROGRESS,
    ),
    (
        "Validation loss diverges after epoch 40 with lr 3e-4",
        "training",
        "high",
        "",
        3,
        20,
        Status.TRIAGED,
    ),
    (
        "ISBI annotation file missing landmark 9 for case 0143",
        "data",
        "high",
        "KeyError",
        2,
        50,
        Status.RESOLVED,
    ),
    ("Pixel spacing absent in 3 CR files from site B", "data", "medium", "", 5, 90, Status.OPEN),
    (
        "SDR@2mm computed on pixels instead of mm",
        "evaluation",
        "high",
        "AssertionError",
        1,
        120,
        Status.CLOSED,
    ),
    (
        "Evaluation CLI crashes on empty split",
        "evaluation",
        "medium",
        "ZeroDivisionError",
        4,
        10,
        Status.OPEN,
    ),
    (
        "torch 2.13 wheel lacks CUDA 12.8 kernels on worker-2",
        "environment",
        "high",
        "RuntimeError",
        6,
        6,
        Status.OPEN,
    ),
    (
        "pydicom cannot decode JPEG 2000 without pylibjpeg-openjpeg",
        "environment",
        "low",
        "NotImplementedError",
        2,
        400,
        Status.OPEN,
    ),
    (
        "Inference worker lost connection to the broker",
        "deployment",
        "critical",
        "ConnectionError",
        9,
        2,
        Status.OPEN,
    ),
    (
        "Study requeue loop after worker restart",
        "deployment",
        "medium",
        "",
        3,
        200,
        Status.RESOLVED,
    ),
    (
        "Menton placed above Pogonion on a left-facing film",
        "clinical",
        "critical",
        "",
        1,
        48,
        Status.RESOLVED,
    ),
    (
        "Review queue shows confidence with too many decimals",
        "clinical",
        "low",
        "",
        1,
        500,
        Status.OPEN,
    ),
]


class Command(BaseCommand):
    help = "Seed demo issues (idempotent)."

    def handle(self, *args, **options) -> None:
        if Issue.objects.filter(source=Source.SEED).exists():
            self.stdout.write("Demo issues already seeded.")
            return
        User = get_user_model()  # noqa: N806
        engineer = (
            User.objects.filter(groups__name="engineer").order_by("pk").first()
            or User.objects.filter(is_superuser=True).order_by("pk").first()
        )
        now = timezone.now()
        with transaction.atomic():
            for n, (title, category, severity, exc, repeats, age_h, status) in enumerate(DEMO):
                start = now - timedelta(hours=age_h)
                for r in range(repeats):
                    issue, _ = issue_report(
                        title=title, category=category, severity=severity, exception_type=exc,
                        description=f"Demo issue {n + 1}: {title}.", source=Source.SEED,
                        reporter=engineer, fingerprint=f"demo-{n}",
                        reproduction_steps=["Check out main", f"Run the {category} step",
                                            "Observe the error"] if r == 0 else (),
                        data_state={"demo": True, "repeat": r},
                        now=start + timedelta(minutes=7 * r),
                    )  # fmt: skip
                self._walk(issue, status, engineer, start + timedelta(hours=age_h * 0.6))
            # One recurrence: resolved, then seen again.
            issue_report(
                title=DEMO[2][0], category=DEMO[2][1], severity=DEMO[2][2],
                exception_type=DEMO[2][3], source=Source.SEED, reporter=engineer,
                fingerprint="demo-2", now=now - timedelta(hours=1),
            )  # fmt: skip
            readiness_demo_seed(now=now)
        self.stdout.write(self.style.SUCCESS(f"Seeded {len(DEMO)} demo issues."))

    def _walk(self, issue: Issue, status: str, actor, when) -> None:
        path = {
            Status.TRIAGED: [Status.TRIAGED],
            Status.IN_PROGRESS: [Status.TRIAGED, Status.IN_PROGRESS],
            Status.RESOLVED: [Status.TRIAGED, Status.IN_PROGRESS, Status.RESOLVED],
            Status.CLOSED: [Status.TRIAGED, Status.RESOLVED, Status.CLOSED],
        }.get(status, [])
        for i, step in enumerate(path):
            issue = issue_triage(
                issue=issue, actor=actor, status=step, now=when + timedelta(minutes=10 * i),
                assignee=actor if step == Status.IN_PROGRESS and actor else issue.assignee,
            )  # fmt: skip
        if path and actor:
            issue_comment(issue=issue, actor=actor, text="Looking into it (demo).")
