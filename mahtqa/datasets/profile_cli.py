"""Run the data-loading profiler in its own process (a Celery prefork child is
daemonic and may not start DataLoader workers):

    python -m mahtqa.datasets.profile_cli SPEC.json

SPEC: {"items": [{"path": ..., "points": [[x, y] * 7] | null}], "options": {...}}.
Prints ``progress DONE TOTAL`` lines, then one line ``report {...json...}``; a bad
input prints ``error MESSAGE`` and exits 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mahtqa.datasets.profiler import ProfileItem, profile_loading


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    items = [
        ProfileItem(
            path=Path(i["path"]),
            points=None if i["points"] is None else np.asarray(i["points"], float),
        )
        for i in spec["items"]
    ]

    def progress(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    try:
        report = profile_loading(items=items, progress=progress, **spec.get("options", {}))
    except ValueError as exc:
        print(f"error {exc}", flush=True)
        return 2
    print("report " + json.dumps(report.as_dict()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
