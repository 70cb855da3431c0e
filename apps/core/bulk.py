"""Inserting many rows at once: one COPY on PostgreSQL, ``bulk_create`` elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models


def rows_insert(
    *, model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert ``rows`` (values in the order of ``fields``; a foreign key by its attname,
    ``run_id``) into ``model``'s table; returns how many. No signals, no ``save()``, no
    primary keys back: for write-once result rows (validation checks and findings),
    where building a model instance per row cost more than the database."""
    meta = model._meta
    chosen = [meta.get_field(name) for name in fields]
    if connection.vendor != "postgresql":
        objs = [model(**dict(zip([f.attname for f in chosen], r, strict=True))) for r in rows]
        model.objects.bulk_create(objs, batch_size=1000)
        return len(objs)
    as_json = [isinstance(f, models.JSONField) for f in chosen]
    prepared = (
        [json.dumps(v) if j and v is not None else v for v, j in zip(row, as_json, strict=True)]
        for row in rows
    )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in chosen)
    count = 0
    with connection.cursor() as cursor, connection.wrap_database_errors:  # Django's errors
        sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in prepared:
                copy.write_row(row)
                count += 1
    return count
