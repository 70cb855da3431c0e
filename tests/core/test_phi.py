"""mahtqa.phi: patterns, known identifiers and the keyed index, without Django."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mahtqa.phi import REDACTED, Scrubber, digest, identifier_tokens, key_is_phi, scrub_text

KEY = b"k" * 32

# The 13 forms the hardening probe planted (issue 8), plus more.
PATTERN_FORMS = [
    ("caret name", "Seen on DOE^JANE today", "DOE"),
    ("patient name field", "Patient name: Jane Doe", "Jane Doe"),
    ("patient id words", "patient id PX-77", "PX-77"),
    ("PatientID=", "PatientID=PX-77, then", "PX-77"),
    ("DOB", "DOB 1970-01-02", "1970-01-02"),
    ("date of birth", "date of birth: 02/01/1970", "02/01/1970"),
    ("SOP UID marked", "SOP Instance UID 1.2.826.0.1.3680043.8.498.123", "3680043"),
    ("born <date>", "the patient was born 12/03/1980 in town", "12/03/1980"),
    ("bare dd/mm/yyyy", "scan of 12/03/1980 looked odd", "12/03/1980"),
    ("bare dd.mm.yyyy", "scan of 12.03.1980 looked odd", "12.03.1980"),
    ("month-name date", "born on March 12, 1980", "1980"),
    ("bare UID", "file 1.2.826.0.1.3680043.8.498.9999 broke", "3680043"),
    ("accession", "accession A123456 failed", "A123456"),
    ("accession no.", "Accession No: 99-1234", "99-1234"),
    ("MRN", "MRN 5551234", "5551234"),
    ("e-mail", "mail jane.doe@hospital.example", "jane.doe"),
    ("title name", "Mrs Fairweather called", "Fairweather"),
    ("8-digit birth date", "birth date 19800312", "19800312"),
]


@pytest.mark.parametrize(
    ("label", "text", "secret"), PATTERN_FORMS, ids=[f[0] for f in PATTERN_FORMS]
)
def test_patterns_catch_each_form(label, text, secret):
    out = scrub_text(text)
    assert secret not in out
    assert REDACTED in out


KEPT = [
    "torch 2.13.0 on python 3.11.7",
    "ts=2026-12-02T00:37:44 level=INFO",
    "study 3f2a1c9e-1b2c-4d5e-8f90-1234567890ab failed",
    "transfer syntax 1.2.840.10008.1.2.4.90 unsupported",
    "connect to 127.0.0.1:6379 refused",
    "see issue id 42",
    "    ^^^^^^^^",
    "loss 0.0312 at step 1200",
]


@pytest.mark.parametrize("text", KEPT)
def test_technical_text_is_kept(text):
    assert scrub_text(text) == text


def test_bare_identifier_needs_knowledge():
    text = "case 778899 crashed"
    assert scrub_text(text) == text  # a bare number is not PHI by pattern...
    assert scrub_text(text, ["778899"]) == f"case {REDACTED} crashed"  # ...but a known ID is


def test_known_name_parts_and_dates_in_any_format():
    s = Scrubber(values=["DOE^JANE", "19700102"])
    out = s.text("Jane Doe (jane) born 1970-01-02, seen 02.01.1970")
    for secret in ("Jane", "Doe", "jane", "1970-01-02", "02.01.1970"):
        assert secret not in out


def test_index_lookup_uses_digests_only():
    index = {digest(t, key=KEY) for t in identifier_tokens(ids=["778899"], names=["ROE^RICH"])}
    asked: list[set[str]] = []

    def lookup(digests: set[str]) -> set[str]:
        asked.append(digests)
        return digests & index

    s = Scrubber(key=KEY, lookup=lookup)
    out = s.data({"note": "pt 778899 Rich Roe", "uid": "x", "count": 778899, "ok": "fine"})
    assert out == {"note": f"pt {REDACTED} {REDACTED} {REDACTED}", "uid": REDACTED,
                   "count": REDACTED, "ok": "fine"}  # fmt: skip
    assert len(asked) == 1  # one batched look-up for the whole payload
    sent = " ".join(asked[0])
    assert "778899" not in sent  # never the plain values
    assert "roe" not in sent.lower()


def test_phi_keys():
    for key in ("PatientBirthDate", "uid", "mrn", "patient_name", "accession"):
        assert key_is_phi(key), key
    for key in ("patient_pseudonym", "deid_sop_instance_uid", "transfer_syntax_uid", "note"):
        assert not key_is_phi(key), key


def test_digest_is_keyed():
    assert digest("t:778899", key=KEY) != digest("t:778899", key=b"other")
    assert len(digest("t:778899", key=KEY)) == 64


_ID = st.text(alphabet=string.ascii_uppercase + string.digits, min_size=4, max_size=12).filter(
    lambda s: any(c.isdigit() for c in s)
)
_FILLER = st.text(alphabet=string.ascii_lowercase + " ,.:;()", max_size=40)


@settings(max_examples=150, deadline=None)
@given(patient_id=_ID, before=_FILLER, after=_FILLER)
def test_a_known_id_never_survives_any_surrounding_text(patient_id, before, after):
    out = Scrubber(values=[patient_id]).text(f"{before} {patient_id} {after}")
    assert patient_id.casefold() not in out.casefold().replace(REDACTED.casefold(), "")


@settings(max_examples=150, deadline=None)
@given(
    day=st.integers(1, 28), month=st.integers(1, 12), year=st.integers(1920, 2025),
    sep=st.sampled_from(["/", ".", "-"]),
    word=st.sampled_from(["born", "DOB", "dob:", "birth date"]),
)  # fmt: skip
def test_birth_dates_after_birth_words(day, month, year, sep, word):
    written = f"{day:02d}{sep}{month:02d}{sep}{year}"
    out = scrub_text(f"patient {word} {written} ok")
    assert written not in out


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(st.integers(0, 99999), min_size=5, max_size=12))
def test_any_non_standard_uid_is_redacted(parts):
    uid = "1." + ".".join(str(p) for p in parts)
    assert uid not in scrub_text(f"x {uid} y")
