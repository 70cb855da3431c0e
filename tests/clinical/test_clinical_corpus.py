"""Every file of the public DICOM corpora: 202 or a 4xx with a code, never a 500."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from apps.clinical.models import Study


def _corpus() -> list[Path]:
    files = []
    try:
        import data_store

        files += sorted((Path(data_store.__file__).parent / "data").glob("*"))
    except ImportError:  # pragma: no cover - dev requirement
        pass
    files += sorted((Path(pydicom.__file__).parent / "data" / "test_files").glob("*"))
    return [
        f
        for f in files
        if f.is_file() and f.suffix.lower() not in (".py", ".txt", ".json", ".gz", ".bz2")
    ]


@pytest.mark.django_db(transaction=True)
def test_every_corpus_file_gets_202_or_a_coded_4xx(api_client_a):
    files = _corpus()
    assert len(files) > 100
    outcomes: dict[str, int] = {}
    for path in files:
        resp = api_client_a.post_dicom(path.read_bytes())
        assert resp.status_code in (200, 202) or 400 <= resp.status_code < 500, (
            path.name,
            resp.status_code,
        )
        body = resp.json()
        key = "accepted" if resp.status_code in (200, 202) else body["code"]
        if resp.status_code >= 400:
            assert body["message"], path.name
        outcomes[key] = outcomes.get(key, 0) + 1
    assert outcomes.get("accepted", 0) >= 8  # the CR radiographs RG1_* and RG3_*
    assert Study.objects.count() <= outcomes["accepted"]
    assert "modality_not_allowed" in outcomes
