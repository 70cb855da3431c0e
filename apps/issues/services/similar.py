"""Similar resolved issues for a report, with their resolution notes: the fix is found once.

Candidates are the resolved and closed issues that were not merged into another one
(the newest ``MAX_CANDIDATES``). What each says (title, exception type, description,
its first occurrence's message and the traces captured with it, all stored scrubbed) is
indexed by :mod:`mahtqa.monitoring.similarity` once per process. The index is rebuilt
only when the candidate set changes: one aggregate query per lookup (count, newest
``updated_at``, highest id) decides, so thousands of resolved issues cost one build,
then a lookup scores only the issues that share a token with the report.

Reads only (no writes); here beside the other services because it holds that cache.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
from django.db.models.functions import Left

from apps.issues.choices import DONE_STATUSES, EventKind
from apps.issues.models import Issue, IssueEvent, Occurrence
from mahtqa.monitoring.similarity import IssueText, SimilarityIndex

MAX_CANDIDATES = 20_000
DEFAULT_LIMIT = 3
MAX_LIMIT = 10
# Below this a "match" shares little more than common words: not worth an engineer's look.
MIN_SCORE = 0.08
DESCRIPTION_CHARS = 2_000
NOTE_CHARS = 2_000


@dataclass(frozen=True)
class SimilarIssue:
    id: int
    title: str
    status: str
    category: str
    score: float
    fields: dict[str, float] = field(default_factory=dict)  # field -> cosine
    terms: tuple[str, ...] = ()
    resolution_note: str = ""
    resolved_at: datetime | None = None

    @property
    def percent(self) -> int:
        return round(self.score * 100)

    @property
    def matched_fields(self) -> list[str]:
        return list(self.fields)


_lock = threading.Lock()
_cache: dict[str, Any] = {"signature": None, "index": None, "bags": {}}


def _candidates() -> QuerySet[Issue]:
    return Issue.objects.filter(status__in=DONE_STATUSES, merged_into__isnull=True)


def _signature() -> tuple[Any, ...]:
    agg = _candidates().aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    return (agg["n"], agg["last"], agg["top"])


def _first_message() -> Subquery:
    return Subquery(
        Occurrence.objects.filter(issue=OuterRef("pk"))
        .order_by("occurred_at", "id")
        .values("message")[:1]
    )


def _texts(queryset: QuerySet[Issue], *, limit: int | None = None) -> list[IssueText]:
    rows = queryset.annotate(
        first_message=_first_message(), short_description=Left("description", DESCRIPTION_CHARS)
    ).values_list(
        "pk", "title", "exception_type", "short_description", "first_message",
        "context__error_traces",
    )  # fmt: skip
    if limit is not None:
        rows = rows[:limit]
    texts = []
    for pk, title, exception_type, description, message, traces in rows:
        texts.append(
            IssueText(
                key=pk,
                title=title,
                exception_type=exception_type,
                message=message or "",
                traces=traces if isinstance(traces, list) else (),
                description=description or "",
            )  # fmt: skip
        )
    return texts


def similar_index_get() -> SimilarityIndex:
    """The index of the resolved issues, rebuilt when they changed. The tokens of an issue
    are kept between rebuilds while its ``updated_at`` stays: a rebuild reads and
    tokenises only the issues resolved (or edited) since."""
    signature = _signature()
    with _lock:
        if _cache["signature"] == signature and _cache["index"] is not None:
            return _cache["index"]
        current = list(
            _candidates()
            .order_by("-updated_at", "-id")
            .values_list("pk", "updated_at")[:MAX_CANDIDATES]
        )
        kept: dict[int, tuple[datetime, dict]] = _cache["bags"]
        stale = [pk for pk, at in current if kept.get(pk, (None,))[0] != at]
        fresh: dict[int, dict] = {}
        for start in range(0, len(stale), 2_000):
            chunk = Issue.objects.filter(pk__in=stale[start : start + 2_000])
            fresh.update({text.key: text.bags() for text in _texts(chunk)})
        bags = {pk: (at, fresh[pk] if pk in fresh else kept[pk][1]) for pk, at in current
                if pk in fresh or pk in kept}  # fmt: skip
        _cache["bags"] = bags
        _cache["index"] = SimilarityIndex.from_bags((pk, bag) for pk, (_, bag) in bags.items())
        _cache["signature"] = signature
        return _cache["index"]


def _notes(issues: Iterable[Issue]) -> dict[int, str]:
    """The resolution note; for an issue resolved without one, its latest comment."""
    notes = {i.pk: i.resolution_note for i in issues}
    missing = [pk for pk, note in notes.items() if not note]
    if missing:
        comments = (
            IssueEvent.objects.filter(issue_id__in=missing, kind=EventKind.COMMENT)
            .order_by("issue_id", "-created_at", "-id")
            .values_list("issue_id", "text")
        )
        for issue_id, text in comments:
            if not notes[issue_id]:
                notes[issue_id] = text
    return {pk: note[:NOTE_CHARS] for pk, note in notes.items()}


API_CLIENT_GROUP = "api_client"


def _rank(
    report: IssueText, *, limit: int, exclude: Iterable[int] = (), reporter_id: int | None = None
) -> list[SimilarIssue]:
    """``reporter_id``: a caller who may not read every issue (an API client) gets its own
    issues and those of the staff and the system, never another API client's."""
    limit = max(1, min(MAX_LIMIT, int(limit)))
    matches = similar_index_get().query(
        report, limit=(limit + 5) if reporter_id is None else MAX_LIMIT * 10,
        min_score=MIN_SCORE, exclude=exclude,
    )  # fmt: skip
    candidates = _candidates()
    if reporter_id is not None:
        others = Issue.objects.filter(reporter__groups__name=API_CLIENT_GROUP).exclude(
            reporter_id=reporter_id
        )
        candidates = candidates.exclude(pk__in=others.values("pk"))
    rows = {
        i.pk: i
        for i in candidates.filter(pk__in=[m.key for m in matches]).only(
            "id", "title", "status", "category", "resolution_note", "resolved_at", "closed_at"
        )
    }
    notes = _notes(rows.values())
    found = []
    for m in matches:
        issue = rows.get(m.key)
        if issue is None:  # reopened or merged since the index was built
            continue
        found.append(
            SimilarIssue(
                id=issue.pk,
                title=issue.title,
                status=issue.status,
                category=issue.category,
                score=m.score,
                fields=dict(m.fields),
                terms=m.terms,
                resolution_note=notes.get(issue.pk, ""),
                resolved_at=issue.resolved_at or issue.closed_at,
            )  # fmt: skip
        )
    return found[:limit]


def similar_resolved_find(
    *, title: str = "", description: str = "", exception_type: str = "", message: str = "",
    traces: Sequence[Mapping[str, Any]] = (), exclude_ids: Iterable[int] = (),
    limit: int = DEFAULT_LIMIT, reporter_id: int | None = None,
) -> list[SimilarIssue]:  # fmt: skip
    """Resolved issues like a report that is being written (nothing is stored)."""
    report = IssueText(
        title=title[:200], description=description[:DESCRIPTION_CHARS],
        exception_type=exception_type[:200], message=message[:5_000], traces=list(traces)[:5],
    )  # fmt: skip
    return _rank(report, limit=limit, exclude=exclude_ids, reporter_id=reporter_id)


def issue_similar_find(
    *, issue: Issue, limit: int = DEFAULT_LIMIT, reporter_id: int | None = None
) -> list[SimilarIssue]:
    """Resolved issues like ``issue``, itself excluded (the issues merged into another
    are never candidates); ``reporter_id``: as in ``_rank``."""
    texts = _texts(Issue.objects.filter(pk=issue.pk))
    if not texts:
        return []
    return _rank(texts[0], limit=limit, exclude=[issue.pk], reporter_id=reporter_id)
