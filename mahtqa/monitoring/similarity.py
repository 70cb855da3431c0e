"""Similar issues: field-weighted TF-IDF cosine over title, exception, message and frames.

Framework-free (standard library only). An :class:`IssueText` is what a report says:
its title, exception type, message, stack frames and description. Each field becomes
a bag of normalised tokens:

- words: lower case, CamelCase and snake_case split (the joined identifier kept too),
  ids, hex, UUIDs and numbers dropped, a path reduced to its file name's words, a light
  suffix stemmer ("decoding", "decoder", "decode" -> "decod"), a few abbreviations
  expanded ("OOM" -> "out of memory");
- exception: the full dotted type, its class name and the class name's words;
- frames: ``module:function`` tokens (the last two path parts of the file, without
  ``.py``) plus ``module`` and ``function`` alone; the innermost frames weigh most and
  the frames of chained causes less; line numbers never count;
- ``text``: every word of the report in one bag, so the words of a new report's message
  meet those of a resolved issue's title.

:class:`SimilarityIndex` holds the resolved issues: per field, TF-IDF weights
(sublinear tf, smoothed idf) normalised to unit length, in an inverted index. A query
scores only the documents that share a token with it; the score is the field-weighted
mean of the per-field cosines over the fields the query has (a field the query lacks
neither helps nor hurts). Each match says which fields matched and on what tokens.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FIELDS = ("title", "exception", "message", "frames", "text")
FIELD_WEIGHTS: Mapping[str, float] = {
    "title": 1.0,
    "exception": 1.0,
    "message": 1.0,
    "frames": 1.5,
    "text": 2.0,
}
MATCH_FIELD_MIN = 0.1  # a field "matched" when its cosine is at least this
INNER_FRAMES = 3  # the innermost frames of a trace carry full weight
FRAME_DECAY = 0.8  # each frame further out weighs this much of the next one in
FRAME_FLOOR = 0.2
CAUSE_WEIGHT = 0.6  # frames and types of chained causes (not the raised exception)
MAX_FRAMES = 30

_UUID_RE = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I)
_HEX_RE = re.compile(r"\b(?:0x[0-9a-f]+|[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*)\b", re.I)
_PATH_RE = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s'\"\\/:,;()\[\]]+)+[\\/]?")
_CAMEL_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_STOPWORDS = """a about above after again all also am an and any are as at be been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its
    itself just me more most my no nor not now of off on once only or other our out over
    own same she should so some such than that the their them then there these they this
    those through to too under until up very was we were what when where which while who
    whom why will with would you your got get gets via per yet still again one two"""
STOPWORDS = frozenset(_STOPWORDS.split())
# Short forms engineers write for the long ones the tracebacks say.
ABBREVIATIONS: Mapping[str, tuple[str, ...]] = {
    "oom": ("memory",),
    "nan": ("nan",),
    "nans": ("nan",),
    "vram": ("gpu", "memory"),
    "mem": ("memory",),
    "cfg": ("config",),
    "conf": ("config",),
    "db": ("database",),
    "img": ("image",),
    "imgs": ("image",),
    "ckpt": ("checkpoint",),
    "lr": ("learning", "rate"),
    "dcm": ("dicom",),
    "px": ("pixel",),
    "perms": ("permission",),
}
_SUFFIXES = ("izations", "ization", "ations", "ation", "ings", "ing", "edly", "ers", "er", "ed",
             "ies", "es", "ly", "s")  # fmt: skip


def stem(word: str) -> str:
    """A light suffix stemmer: enough to meet "decoding" with "decoder" and "decode"."""
    if len(word) <= 4 or not word.isalpha():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                continue
            if suffix == "ies":
                return word[:-3] + "y"
            word = word[: -len(suffix)]
            break
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def _path_words(match: re.Match[str]) -> str:
    name = re.split(r"[\\/]", match.group().rstrip("\\/"))[-1]
    return " " + name.replace(".", " ") + " "


def _camel(chunk: str) -> list[str]:
    """``OutOfMemoryError`` -> Out, Of, Memory, Error; ``NaN`` stays one word."""
    parts = _CAMEL_RE.findall(chunk)
    if any(len(p) == 1 and not p.isdigit() for p in parts):
        return [p for p in re.split(r"(\d+)", chunk) if p]
    return parts


def words(text: str) -> list[str]:
    """Normalised word tokens of free text (ids, numbers and directories dropped)."""
    text = _UUID_RE.sub(" ", text or "")
    text = _PATH_RE.sub(_path_words, text)
    text = _HEX_RE.sub(" ", text)
    out: list[str] = []
    for raw in _WORD_RE.findall(text):
        parts = [p for chunk in raw.split("_") for p in _camel(chunk)]
        pieces = [p.lower() for p in parts if not p.isdigit()]
        if len(pieces) > 1:  # the identifier itself is a token too
            joined = "_".join(pieces)
            if len(joined) > 3:
                out.append(joined)
        for piece in pieces:
            if piece in ABBREVIATIONS:
                out.extend(ABBREVIATIONS[piece])
                continue
            if len(piece) < 2 or piece in STOPWORDS:
                continue
            out.append(stem(piece))
    return out


def exception_tokens(exception_type: str) -> list[str]:
    """``torch.cuda.OutOfMemoryError`` -> the full name, ``OutOfMemoryError``, its words."""
    name = (exception_type or "").strip()
    if not name:
        return []
    short = name.rsplit(".", 1)[-1]
    tokens = [f"exc:{name.lower()}"]
    if short != name:
        tokens.append(f"exc:{short.lower()}")
    tokens += [w for w in words(short) if w not in ("error", "exception")]
    return tokens


def frame_module(filename: str) -> str:
    """The last two path parts without ``.py``: ``engine/train`` (checkouts differ)."""
    parts = [p for p in re.split(r"[\\/]", filename or "") if p][-2:]
    if parts:
        parts[-1] = re.sub(r"\.pyw?$", "", parts[-1])
    return "/".join(parts).lower()


def frame_tokens(frames: Sequence[Mapping[str, Any]], *, scale: float = 1.0) -> dict[str, float]:
    """Weighted ``module:function``, ``module`` and ``function`` tokens; innermost last."""
    weights: dict[str, float] = defaultdict(float)
    chosen = list(frames or [])[-MAX_FRAMES:]
    for depth, frame in enumerate(reversed(chosen)):
        if not isinstance(frame, Mapping):
            continue
        w = scale * max(FRAME_FLOOR, FRAME_DECAY ** max(0, depth - INNER_FRAMES + 1))
        module = frame_module(str(frame.get("filename", "")))
        function = str(frame.get("function", "") or "").lower()
        if module and function:
            weights[f"mf:{module}:{function}"] += w
        if module:
            weights[f"m:{module}"] += 0.5 * w
        if function and function not in ("<module>", "__call__", "wrapper", "inner", "run"):
            weights[f"f:{function}"] += 0.5 * w
    return weights


@dataclass(frozen=True)
class IssueText:
    """What a report (or a resolved issue) says. ``traces``: ``[{type, message, frames}]``,
    causes first, the raised exception last (the shape ``mahtqa.reporting`` sends)."""

    key: Any = None
    title: str = ""
    exception_type: str = ""
    message: str = ""
    traces: Sequence[Mapping[str, Any]] = ()
    description: str = ""

    def bags(self) -> dict[str, dict[str, float]]:
        """Field -> token -> raw weight (term frequency, weighted for frames and causes)."""
        bags: dict[str, dict[str, float]] = {f: defaultdict(float) for f in FIELDS}
        traces = [t for t in (self.traces or []) if isinstance(t, Mapping)]
        innermost = traces[-1] if traces else {}
        exception_type = self.exception_type or str(innermost.get("type", "") or "")
        message = self.message or str(innermost.get("message", "") or "")
        for token in words(self.title):
            bags["title"][token] += 1.0
        for token in exception_tokens(exception_type):
            bags["exception"][token] += 1.0
        for trace in traces[:-1]:
            for token in exception_tokens(str(trace.get("type", "") or "")):
                bags["exception"][token] += CAUSE_WEIGHT
        for token in words(message):
            bags["message"][token] += 1.0
        for i, trace in enumerate(traces):
            scale = 1.0 if i == len(traces) - 1 else CAUSE_WEIGHT
            for token, w in frame_tokens(trace.get("frames") or [], scale=scale).items():
                bags["frames"][token] += w
        text = [self.title, message, self.description, *(str(t.get("message", "")) for t in
                traces[:-1])]  # fmt: skip
        for token in [w for part in text for w in words(part)] + words(
            exception_type.rsplit(".", 1)[-1]
        ):
            bags["text"][token] += 1.0
        return {f: dict(b) for f, b in bags.items() if b}


@dataclass(frozen=True)
class Match:
    key: Any
    score: float  # 0..1
    fields: dict[str, float]  # field -> cosine, only fields at or above MATCH_FIELD_MIN
    terms: tuple[str, ...] = field(default=())  # the shared tokens that weigh most


def _tf(weight: float) -> float:
    return 1.0 + math.log(weight) if weight >= 1.0 else weight


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vector.values()))
    return {t: v / norm for t, v in vector.items()} if norm else {}


def _readable(token: str) -> str:
    for prefix in ("exc:", "mf:", "m:", "f:"):
        if token.startswith(prefix):
            return token[len(prefix) :]
    return token


Bags = dict[str, dict[str, float]]


class SimilarityIndex:
    """The resolved issues, indexed once; :meth:`query` ranks them against a report."""

    def __init__(
        self, documents: Iterable[IssueText], *, weights: Mapping[str, float] | None = None
    ) -> None:
        self._build(((doc.key, doc.bags()) for doc in documents), weights)

    @classmethod
    def from_bags(
        cls, items: Iterable[tuple[Any, Bags]], *, weights: Mapping[str, float] | None = None
    ) -> SimilarityIndex:
        """From ``(key, IssueText.bags())`` pairs: a caller that keeps the bags of documents
        that did not change rebuilds without tokenising them again."""
        index = cls.__new__(cls)
        index._build(items, weights)
        return index

    def _build(self, items: Iterable[tuple[Any, Bags]], weights: Mapping[str, float] | None):
        self.weights = dict(weights or FIELD_WEIGHTS)
        self.keys: list[Any] = []
        bags: list[Bags] = []
        for key, bag in items:
            self.keys.append(key)
            bags.append(bag)
        self.size = len(self.keys)
        df: dict[str, dict[str, int]] = {f: defaultdict(int) for f in FIELDS}
        for bag in bags:
            for f, tokens in bag.items():
                for token in tokens:
                    df[f][token] += 1
        self.idf: dict[str, dict[str, float]] = {
            f: {t: math.log((1 + self.size) / (1 + n)) + 1.0 for t, n in counts.items()}
            for f, counts in df.items()
        }
        self.vectors: list[Bags] = []
        self.postings: dict[str, dict[str, list[tuple[int, float]]]] = {
            f: defaultdict(list) for f in FIELDS
        }
        for i, bag in enumerate(bags):
            vectors = {}
            for f, tokens in bag.items():
                idf = self.idf[f]
                vectors[f] = vector = _unit({t: _tf(w) * idf[t] for t, w in tokens.items()})
                postings = self.postings[f]
                for token, w in vector.items():
                    postings[token].append((i, w))
            self.vectors.append(vectors)

    def __len__(self) -> int:
        return self.size

    def _query_vector(self, f: str, tokens: Mapping[str, float]) -> dict[str, float]:
        unseen = math.log(1 + self.size) + 1.0  # a token no document has: the largest idf
        idf = self.idf.get(f, {})
        return _unit({t: _tf(w) * idf.get(t, unseen) for t, w in tokens.items()})

    def query(
        self, report: IssueText, *, limit: int = 3, min_score: float = 0.05,
        exclude: Iterable[Any] = (),
    ) -> list[Match]:  # fmt: skip
        """The ``limit`` best documents scoring at least ``min_score``, best first."""
        queries = {
            f: self._query_vector(f, tokens)
            for f, tokens in report.bags().items()
            if self.weights.get(f, 0.0)
        }
        total = sum(self.weights[f] for f in queries)
        if not total or not self.size:
            return []
        scores: dict[int, float] = defaultdict(float)
        for f, vector in queries.items():
            postings = self.postings[f]
            weight = self.weights[f] / total
            for token, qw in vector.items():
                c = weight * qw
                for i, dw in postings.get(token, ()):
                    scores[i] += c * dw
        excluded = set(exclude)
        best = heapq.nsmallest(
            max(0, limit) + len(excluded),
            ((-score, str(self.keys[i]), i) for i, score in scores.items() if score >= min_score),
        )
        ranked = []
        for negative, _, i in best:
            if self.keys[i] in excluded:
                continue
            ranked.append(self._match(i, -negative, queries))
        return ranked[: max(0, limit)]

    def _match(self, i: int, score: float, queries: dict[str, dict[str, float]]) -> Match:
        """Per-field cosines and the shared tokens that weigh most, for one result."""
        total = sum(self.weights[f] for f in queries)
        cosines: dict[str, float] = {}
        shared: dict[str, float] = defaultdict(float)
        for f, vector in queries.items():
            doc = self.vectors[i].get(f, {})
            c = 0.0
            for token, qw in vector.items():
                dw = doc.get(token)
                if dw:
                    c += qw * dw
                    shared[_readable(token)] += self.weights[f] / total * qw * dw
            if c >= MATCH_FIELD_MIN:
                cosines[f] = round(min(1.0, c), 3)
        terms = sorted(shared.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        return Match(
            key=self.keys[i],
            score=round(min(1.0, score), 4),
            fields=dict(sorted(cosines.items(), key=lambda kv: -kv[1])),
            terms=tuple(t for t, _ in terms),
        )


def rank_of(matches: Sequence[Match], key: Any) -> int | None:
    """1-based rank of ``key`` in ``matches`` (None when absent)."""
    for position, match in enumerate(matches, 1):
        if match.key == key:
            return position
    return None
