from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import template

from apps.issues.choices import ACTIVE_STATUSES

register = template.Library()


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


@register.simple_tag
def due_state(issue: Any, now: datetime) -> dict[str, Any]:
    """``{"overdue": bool, "text": "due in 2 h 5 min" | "overdue by 1 d 3 h" | "-"}``."""
    if issue.status not in ACTIVE_STATUSES:
        return {"overdue": False, "text": "-", "active": False}
    delta = (issue.due_at - now).total_seconds()
    if delta < 0:
        return {"overdue": True, "text": f"overdue by {_span(delta)}", "active": True}
    return {"overdue": False, "text": f"due in {_span(delta)}", "active": True}


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def is_mapping(value: Any) -> bool:
    return isinstance(value, dict)
