"""Proactive health checks (the guide's ProactiveMonitoringSystem): figures in, a
green/amber/red result with a maintenance recommendation out.

Pure functions over numbers the apps layer gathers, so every threshold is tested on
known inputs. A result never carries PHI: counts, ages, rates and sizes only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

GREEN, AMBER, RED = "green", "amber", "red"
ORDER = {GREEN: 0, AMBER: 1, RED: 2}


@dataclass(frozen=True)
class Result:
    code: str
    status: str
    message: str
    recommendation: str = ""
    value: float | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def worst(statuses: list[str]) -> str:
    return max(statuses, key=ORDER.__getitem__, default=GREEN)


def _level(value: float, amber: float, red: float) -> str:
    return RED if value >= red else AMBER if value >= amber else GREEN


def system_resources(
    *, cpu_pct: float, mem_pct: float, disk_pct: float, disk_free_gb: float
) -> Result:
    status = worst([_level(cpu_pct, 85, 97), _level(mem_pct, 85, 95), _level(disk_pct, 80, 90)])
    advice = {
        GREEN: "",
        AMBER: "Plan capacity: purge old outbox rows and exports, add a worker host or RAM.",
        RED: "Act now: free disk (old studies past retention, var/exports) or add memory; "
        "check `top` for a runaway worker.",
    }[status]
    return Result(
        "system_resources", status,
        f"CPU {cpu_pct:.0f} %, memory {mem_pct:.0f} %, disk {disk_pct:.0f} % "
        f"({disk_free_gb:.1f} GB free).", advice, disk_pct,
        {"cpu_pct": cpu_pct, "mem_pct": mem_pct, "disk_pct": disk_pct},
    )  # fmt: skip


def queue_depth(*, queues: dict[str, dict[str, float]], max_age_s: float) -> Result:
    """``queues``: {queue: {"depth": n, "oldest_s": age of the oldest waiting item}}."""
    oldest = max((q["oldest_s"] for q in queues.values()), default=0.0)
    status = _level(oldest, max_age_s / 2, max_age_s)
    parts = [f"{name}: {int(q['depth'])} waiting, oldest {q['oldest_s']:.0f} s"
             for name, q in sorted(queues.items())]  # fmt: skip
    advice = {
        GREEN: "",
        AMBER: "Work is waiting longer than usual: check the workers page and queue depth.",
        RED: "Work is stuck: start or restart the worker for that queue "
        "(`celery -A mahtqa worker -Q inference,default,checks`), check the broker.",
    }[status]
    return Result("queue_depth", status, "; ".join(parts) or "Nothing waiting.", advice, oldest,
                  {"queues": queues})  # fmt: skip


def review_backlog(*, open_tasks: int, overdue: int, oldest_overdue_min: float) -> Result:
    share = overdue / open_tasks if open_tasks else 0.0
    status = RED if share >= 0.25 or oldest_overdue_min >= 240 else AMBER if overdue else GREEN
    advice = {
        GREEN: "",
        AMBER: "Some cases are past their SLA: ask the on-call radiologist to work the queue.",
        RED: "The review backlog breaks the SLAs: add reviewers to the rota or widen the "
        "SLA in Thresholds only with clinical sign-off.",
    }[status]
    return Result(
        "review_backlog", status,
        f"{open_tasks} open review tasks, {overdue} past SLA"
        + (f" (oldest {oldest_overdue_min:.0f} min over)" if overdue else "") + ".",
        advice, float(overdue), {"open": open_tasks, "overdue": overdue},
    )  # fmt: skip


def model_performance(
    *, reviewed: int, corrected: int, rejected: int, mre_mm: float | None,
    max_correction_rate: float, max_mre_mm: float, min_cases: int = 20,
) -> Result:  # fmt: skip
    if reviewed < min_cases:
        return Result("model_performance", GREEN,
                      f"{reviewed} reviewed cases in the window: too few to judge.")  # fmt: skip
    rate = (corrected + rejected) / reviewed
    status = worst([
        _level(rate, 0.75 * max_correction_rate, max_correction_rate),
        GREEN if mre_mm is None else _level(mre_mm, 0.75 * max_mre_mm, max_mre_mm),
    ])  # fmt: skip
    advice = {
        GREEN: "",
        AMBER: "Reviewers correct more than usual: open the clinical monitor by site and landmark.",
        RED: "The model underperforms on reviewed cases: switch routing to review-all and "
        "evaluate the active version against a reference dataset.",
    }[status]
    mre = "n/a" if mre_mm is None else f"{mre_mm:.2f} mm"
    return Result(
        "model_performance", status,
        f"{reviewed} reviewed: {corrected} corrected, {rejected} rejected "
        f"({100 * rate:.0f} %), AI vs final MRE {mre}.", advice, rate,
        {"reviewed": reviewed, "corrected": corrected, "rejected": rejected, "mre_mm": mre_mm},
    )  # fmt: skip


def input_drift(
    *, recent_n: int, recent_ood_rate: float, reference_ood_rate: float,
    recent_mean_intensity: float | None, reference_mean_intensity: float | None,
    reference_sd_intensity: float | None, min_cases: int = 20,
) -> Result:  # fmt: skip
    if recent_n < min_cases:
        return Result("input_drift", GREEN, f"{recent_n} recent studies: too few to judge.")
    z = None
    if None not in (recent_mean_intensity, reference_mean_intensity, reference_sd_intensity) \
            and reference_sd_intensity > 0:  # fmt: skip
        z = abs(recent_mean_intensity - reference_mean_intensity) / (
            reference_sd_intensity / recent_n**0.5
        )
    excess = recent_ood_rate - reference_ood_rate
    status = worst([_level(excess, 0.1, 0.25), GREEN if z is None else _level(z, 4.0, 6.0)])
    advice = {
        GREEN: "",
        AMBER: "Recent radiographs differ from the model's reference: check for a new device "
        "or protocol on the sites page.",
        RED: "Input drift: onboard the new site (calibrate) or keep it on review-all; "
        "do not release automatically until it is understood.",
    }[status]
    return Result(
        "input_drift", status,
        f"OOD rate {100 * recent_ood_rate:.0f} % in {recent_n} recent studies against "
        f"{100 * reference_ood_rate:.0f} % before"
        + (f"; mean intensity z = {z:.1f}" if z is not None else "") + ".", advice, excess,
        {"z_intensity": z, "recent_n": recent_n},
    )  # fmt: skip


def security_status(
    *, failed_logins: int, lockouts: int, token_failures: int, stale_tokens: int,
    window_h: float, stale_days: int,
) -> Result:  # fmt: skip
    status = worst([
        _level(lockouts, 3, 10), _level(token_failures, 20, 100),
        _level(failed_logins, 20, 100), AMBER if stale_tokens else GREEN,
    ])  # fmt: skip
    advice = {
        GREEN: "",
        AMBER: "Review the security events; revoke API tokens unused for "
        f"{stale_days} days (Admin → API tokens).",
        RED: "Possible attack: check the source addresses in the security events, block them "
        "at the proxy, rotate the affected tokens and open a security incident.",
    }[status]
    return Result(
        "security_status", status,
        f"Last {window_h:.0f} h: {failed_logins} failed logins, {lockouts} lockouts, "
        f"{token_failures} token failures; {stale_tokens} token(s) unused for {stale_days}+ days.",
        advice, float(lockouts + token_failures),
        {"failed_logins": failed_logins, "lockouts": lockouts, "token_failures": token_failures,
         "stale_tokens": stale_tokens},
    )  # fmt: skip


def storage_growth(
    *, used_bytes: float, free_bytes: float, earlier_used_bytes: float | None,
    earlier_age_h: float | None,
) -> Result:  # fmt: skip
    if earlier_used_bytes is None or not earlier_age_h:
        return Result("storage_growth", GREEN, "First measurement: growth known next run.",
                      value=used_bytes, data={"used_bytes": used_bytes})  # fmt: skip
    per_day = (used_bytes - earlier_used_bytes) / earlier_age_h * 24
    days_left = free_bytes / per_day if per_day > 0 else float("inf")
    status = RED if days_left < 7 else AMBER if days_left < 30 else GREEN
    advice = {
        GREEN: "",
        AMBER: "Storage fills within a month at this rate: plan retention or more disk.",
        RED: "Storage fills within a week: apply the retention policy now or add disk.",
    }[status]
    left = "never at this rate" if days_left == float("inf") else f"full in {days_left:.0f} days"
    return Result(
        "storage_growth", status, f"{per_day / 1e9:+.2f} GB/day; {left}.", advice, used_bytes,
        {"used_bytes": used_bytes, "per_day_bytes": per_day,
         "days_left": None if days_left == float("inf") else days_left},
    )  # fmt: skip
