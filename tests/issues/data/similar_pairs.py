"""The labelled set of similar-issue pairs (``similar_pairs.json``) and how to file it.

``resolved``: resolved issues (50 targets and distractors that share their vocabulary),
each with the note of what fixed it. ``reports``: 50 new reports, each of the same root
cause as the resolved issue its ``expected`` names, written differently. Frames are
``"filename:lineno:function"``, outermost first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PATH = Path(__file__).with_name("similar_pairs.json")


def frames_parse(items: list[str]) -> list[dict[str, Any]]:
    frames = []
    for item in items:
        filename, lineno, function = item.rsplit(":", 2)
        frames.append({"filename": filename, "lineno": int(lineno), "function": function})
    return frames


def traces_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The one trace of an item (none for a report typed into the web form)."""
    if not item["frames"]:
        return []
    return [
        {
            "type": item["exception_type"] or "Exception",
            "message": item["message"],
            "frames": frames_parse(item["frames"]),
        }
    ]


def pairs_load() -> dict[str, list[dict[str, Any]]]:
    return json.loads(PATH.read_text())


def resolved_file(*, item: dict[str, Any], actor: Any) -> Any:
    """File one resolved item through the real services (scrubbing, fingerprint, context),
    then resolve it with its note. Returns the issue."""
    from apps.issues.services import issue_report, issue_triage

    issue, _ = issue_report(
        title=item["title"], category=item["category"], severity=item["severity"],
        description=item["description"], exception_type=item["exception_type"],
        message=item["message"], traces=traces_of(item),
        environment={"python": "3.11"}, system_metrics={"memory_percent": 40.0},
        fingerprint=f"similar-set|{item['key']}",
    )  # fmt: skip
    return issue_triage(
        issue=issue, actor=actor, status="resolved", resolution_note=item["resolution_note"]
    )
