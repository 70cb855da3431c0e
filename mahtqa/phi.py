"""PHI scrubbing: one framework-free module (standard library only).

Used by the reporting client (``mahtqa.reporting``), the server (issues,
comments, occurrences, exports) and the log filter, so the three never drift.

Two kinds of knowledge:

1. **Patterns** that need no knowledge of the patient: DICOM person names
   (``DOE^JANE``), identity fields (``Patient name: ...``, ``PatientID=...``),
   birth dates (``DOB``, ``born 12/03/1980``), human-written dates
   (``12/03/1980``, ``12.03.1980``, ``12 March 1980``), DICOM UIDs that are not
   DICOM-standard UIDs, accession and record numbers, ID-like tokens next to
   identity words, e-mail addresses, ``Mr Smith``.
2. **Known identifiers**: values the caller knows (``values=``, e.g. the linked
   study's own patient name, ID, birth date, accession and UIDs) and a keyed
   hash index of every identifier the system holds (``lookup=``): each
   candidate token of the text is normalised, HMAC'd with ``key`` and looked
   up, so the index stores digests only and never PHI.

    scrubber = Scrubber(values=["DOE^JANE", "778899"], key=k, lookup=known_digests)
    scrubber.text("Jane's scan, id 778899")  # -> "[REDACTED]'s scan, id [REDACTED]"

A scrubber over-redacts rather than leaks: a token that matches a known
identifier is replaced wherever it appears.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any

__all__ = [
    "REDACTED",
    "Scrubber",
    "digest",
    "identifier_tokens",
    "key_is_phi",
    "scrub_data",
    "scrub_text",
]

REDACTED = "[REDACTED]"
MAX_TEXT = 20_000
MIN_TOKEN = 3  # shorter tokens are too common to index or match

Lookup = Callable[[set[str]], set[str]]

# --- Patterns ------------------------------------------------------------------

_PN_CHAR = r"[^\s^\"'<>=:,;()\[\]{}|]"
_PERSON_NAME_RE = re.compile(rf"{_PN_CHAR}*(?:\^{_PN_CHAR}*)+")
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
# Dates as people write them (ISO dates with a time are machine timestamps: kept
# unless they follow a birth word or are a known identifier).
_HUMAN_DATE = (
    r"\d{1,2}/\d{1,2}/(?:\d{4}|\d{2})|\d{1,2}\.\d{1,2}\.\d{4}|\d{1,2}-\d{1,2}-\d{4}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{_MONTHS})\.?,?\s+\d{{4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
)
_HUMAN_DATE_RE = re.compile(rf"(?i)(?<![\w.])(?:{_HUMAN_DATE})(?![\w])")
_ANY_DATE = rf"(?:{_HUMAN_DATE}|\d{{4}}[-/.]?\d{{2}}[-/.]?\d{{2}})"
_BIRTH_RE = re.compile(
    r"(?i)\b(d\.?o\.?b\.?|date[ _-]?of[ _-]?birth|birth[ _-]?date|birthday|born(?: on)?"
    r"|patient'?s? ?birth ?date)"
    rf"(\W{{0,8}}(?:DA:\s*)?'?)({_ANY_DATE})"
)
# Any DICOM UID but the DICOM standard's own (transfer syntaxes, SOP classes).
_UID_RE = re.compile(r"(?<![\w.])(?!1\.2\.840\.10008\.)[0-2](?:\.\d{1,39}){4,}(?![\w.])")
_PATIENT_FIELD_RE = re.compile(
    r"(?i)\b(patient'?s?[ _-]?(?:name|id|address|telephone numbers|mother'?s? birth name)"
    r"|other patient (?:names|ids))\b(\s*(?:[A-Z]{2}:)?\s*[:=]?\s*'?)([^'\n,;)}\[\]]*)"
)
_RECORD_RE = re.compile(
    r"(?i)\b(accession(?:[ _-]?(?:no|number|num|nr))?|acc\.?[ _-]?(?:no|nr)|mrn"
    r"|medical[ _-]record(?:[ _-]?(?:no|number))?|(?:hospital|record|chart|nhs|case|file)"
    r"[ _-]?(?:no|number|nr)|ssn|social security(?: number)?)\b"
    r"(\.?\s*(?:#|:|=|is|of)?\s*'?)([A-Za-z]{0,4}[-#]?\d[\w\-/.]*)"
)
# ID-like tokens (with a digit) next to identity words. Canonical UUIDs are the
# system's own public ids and stay.
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_IDENTITY_RE = re.compile(
    r"(?i)\b(patient|pt|pid|subject|identifier|(?<![\w-])id)\b"
    r"(\.?\s*(?:no\.?|number|nr|#)?\s*[:=#]?\s*'?)"
    rf"(?!{_UUID})([A-Za-z]{{0,6}}[-_]?\d[\w\-/.]*)"
)
_TITLE_NAME_RE = re.compile(r"\b(Mr|Mrs|Ms|Miss|Mx)\.?\s+([A-Z][a-z'\-]+(?:\s+[A-Z][a-z'\-]+)?)")
_TOKEN_RE = re.compile(r"[^\W_]+(?:[./-][^\W_]+)*")

# Keys whose value is always PHI (compared lower-case, letters only).
PHI_KEYS = frozenset(
    {
        "patientname", "patientid", "patientbirthdate", "patientaddress", "patientsaddress",
        "patientsname", "patientsbirthdate", "otherpatientnames", "otherpatientids",
        "patientmothersbirthname", "patienttelephonenumbers", "referringphysicianname",
        "referringphysiciansname", "performingphysicianname", "operatorsname",
        "accessionnumber", "studyinstanceuid", "seriesinstanceuid", "sopinstanceuid",
        "mediastoragesopinstanceuid", "birthdate", "dateofbirth", "dob", "email", "uid",
        "mrn", "name", "fullname", "firstname", "lastname", "surname", "givenname",
    }
)  # fmt: skip
_SAFE_KEYS = frozenset(
    {
        "patientpseudonym", "sopclassuid", "transfersyntaxuid", "implementationclassuid",
        "mediastoragesopclassuid", "hostname", "modelname", "username",
    }
)  # fmt: skip
_PHI_KEY_PARTS = ("patient", "birth", "accession", "mrn")


def key_is_phi(key: Any) -> bool:
    """Whether a mapping key names a value that is PHI whatever it holds."""
    k = re.sub(r"[^a-z]", "", str(key).lower())
    if k in _SAFE_KEYS or k.startswith("deid"):
        return False
    if k in PHI_KEYS or any(part in k for part in _PHI_KEY_PARTS):
        return True
    return k.endswith("uid") and k not in _SAFE_KEYS


# --- Known identifiers: normalisation and keyed digests -------------------------


def _date_forms(token: str) -> set[str]:
    """Canonical ``date:YYYYMMDD`` candidates of a date written any common way."""
    parts = re.split(r"[-/.]", token)
    triples: list[tuple[int, int, int]] = []
    if len(parts) == 1 and len(token) == 8 and token.isdigit():
        triples.append((int(token[:4]), int(token[4:6]), int(token[6:])))
    elif len(parts) == 3 and all(p.isdigit() for p in parts):
        a, b, c = (int(p) for p in parts)
        if len(parts[0]) == 4:
            triples.append((a, b, c))
        elif len(parts[2]) in (2, 4):
            year = c if len(parts[2]) == 4 else (1900 + c if c > 30 else 2000 + c)
            triples += [(year, b, a), (year, a, b)]  # day-first and month-first
    out = set()
    for y, m, d in triples:
        try:
            out.add(f"date:{date(y, m, d):%Y%m%d}")
        except ValueError:
            continue
    return out


def _token_forms(token: str) -> set[str]:
    """What a token of free text may match in the index."""
    forms = {f"t:{token.casefold()}"} if len(token) >= MIN_TOKEN else set()
    forms |= _date_forms(token)
    for part in re.split(r"[./-]", token):
        if len(part) >= MIN_TOKEN and part != token:
            forms.add(f"t:{part.casefold()}")
    return forms


def identifier_tokens(
    *, names: Iterable[str] = (), ids: Iterable[str] = (), dates: Iterable[str] = (),
    uids: Iterable[str] = (),
) -> set[str]:  # fmt: skip
    """The normalised forms under which identifiers are indexed and matched."""
    tokens: set[str] = set()
    for name in names:
        for part in re.split(r"[\^\s,]+", str(name)):
            part = part.strip(".")
            if len(part) >= MIN_TOKEN:
                tokens.add(f"t:{part.casefold()}")
    for value in (*ids, *uids):
        value = str(value).strip()
        if len(value) >= MIN_TOKEN:
            tokens.add(f"t:{value.casefold()}")
    for value in dates:
        tokens |= _date_forms(str(value).strip())
    return tokens


def digest(token: str, *, key: bytes) -> str:
    """The keyed hash under which a normalised token is stored in the index."""
    return hmac.new(key, b"phi-index|" + token.encode(), hashlib.sha256).hexdigest()


# --- The scrubber -------------------------------------------------------------------


def _keep_group3(m: re.Match[str]) -> str:
    return m.group(0) if not m.group(3).strip() else f"{m.group(1)}{m.group(2)}{REDACTED}"


def _identity_sub(m: re.Match[str]) -> str:
    value = m.group(3)
    word = m.group(1).lower()
    if word in ("id", "identifier") and value.isdigit() and len(value) <= 3:
        return m.group(0)  # "issue id 42": a row number, not a person
    return f"{m.group(1)}{m.group(2)}{REDACTED}"


def _patterns_apply(text: str) -> str:
    text = _PATIENT_FIELD_RE.sub(_keep_group3, text)
    text = _BIRTH_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _RECORD_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _IDENTITY_RE.sub(_identity_sub, text)
    text = _HUMAN_DATE_RE.sub(REDACTED, text)
    text = _UID_RE.sub(REDACTED, text)
    text = _EMAIL_RE.sub(REDACTED, text)
    text = _TITLE_NAME_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if "^" in text:
        # Only tokens with a letter: traceback markers (``^^^^``) are not names.
        text = _PERSON_NAME_RE.sub(
            lambda m: REDACTED if any(c.isalpha() for c in m.group()) else m.group(), text
        )
    return text


class Scrubber:
    """Scrubs text and JSON-able data against patterns and known identifiers.

    ``values``: plain identifiers known to the caller (names, IDs, dates, UIDs).
    ``key`` + ``lookup``: the keyed index; ``lookup`` gets a set of digests and
    returns the subset the system holds. It is called once per :meth:`data`
    or :meth:`text` call.
    """

    def __init__(
        self, *, values: Iterable[str] = (), key: bytes | None = None,
        lookup: Lookup | None = None,
    ) -> None:  # fmt: skip
        values = [str(v) for v in values if v is not None and str(v).strip()]
        self._known: set[str] = identifier_tokens(names=values, ids=values, dates=values)
        self._full = [
            re.compile(rf"(?i)(?<![^\W_]){re.escape(v.strip())}(?![^\W_])")
            for v in sorted({v.strip() for v in values if len(v.strip()) >= MIN_TOKEN},
                            key=len, reverse=True)
        ]  # fmt: skip
        self._key = key
        self._lookup = lookup if key else None

    # Index look-ups are batched: collect every candidate of every string first.
    def _hits(self, strings: Iterable[str]) -> set[str]:
        if self._lookup is None or self._key is None:
            return set()
        by_digest: dict[str, str] = {}
        for s in strings:
            for m in _TOKEN_RE.finditer(s):
                for form in _token_forms(m.group()):
                    by_digest.setdefault(digest(form, key=self._key), form)
        if not by_digest:
            return set()
        found = self._lookup(set(by_digest))
        return {by_digest[d] for d in found if d in by_digest}

    def _one(self, text: str, known: set[str]) -> str:
        for pattern in self._full:
            text = pattern.sub(REDACTED, text)
        if known:
            text = _TOKEN_RE.sub(
                lambda m: REDACTED if _token_forms(m.group()) & known else m.group(), text
            )
        return _patterns_apply(text)

    def text(self, text: Any) -> str:
        """``text`` with PHI replaced by ``[REDACTED]``."""
        if text is None:
            return ""
        text = str(text)[:MAX_TEXT]
        return self._one(text, self._known | self._hits([text]))

    def data(self, data: Any) -> Any:
        """A JSON-able copy of ``data``: PHI keys' values redacted, every string scrubbed."""
        strings: list[str] = []
        _collect(data, strings)
        known = self._known | self._hits(strings)
        return self._walk(data, known)

    def _walk(self, data: Any, known: set[str]) -> Any:
        if isinstance(data, Mapping):
            return {
                self._one(str(k)[:MAX_TEXT], known): (
                    REDACTED if key_is_phi(k) and v not in (None, "", [], {})
                    else self._walk(v, known)
                )
                for k, v in data.items()
            }  # fmt: skip
        if isinstance(data, (list, tuple, set, frozenset)):
            return [self._walk(v, known) for v in data]
        if data is None or isinstance(data, (bool, float)):
            return data
        if isinstance(data, int):  # a patient ID sent as a number
            return REDACTED if known and _token_forms(str(data)) & known else data
        return self._one(str(data)[:MAX_TEXT], known)


def _collect(data: Any, out: list[str]) -> None:
    if isinstance(data, Mapping):
        for k, v in data.items():
            out.append(str(k)[:MAX_TEXT])
            _collect(v, out)
    elif isinstance(data, (list, tuple, set, frozenset)):
        for v in data:
            _collect(v, out)
    elif data is not None and not isinstance(data, (bool, float)):
        out.append(str(data)[:MAX_TEXT])


def scrub_text(text: Any, phi_values: Iterable[str] = ()) -> str:
    """Patterns plus ``phi_values``; no index (the client's and the log filter's view)."""
    return Scrubber(values=phi_values).text(text)


def scrub_data(data: Any, phi_values: Iterable[str] = ()) -> Any:
    return Scrubber(values=phi_values).data(data)
