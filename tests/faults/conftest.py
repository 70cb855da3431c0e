"""Fault injection on real services: the test database refused, Redis killed, workers killed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection
from psycopg import sql


def _admin() -> psycopg.Connection:
    params = connection.settings_dict
    return psycopg.connect(
        host=params.get("HOST") or "127.0.0.1", port=params.get("PORT") or 5432,
        user=params.get("USER") or "postgres", password=params.get("PASSWORD") or None,
        dbname="postgres", autocommit=True,
    )  # fmt: skip


@contextmanager
def database_refused() -> Iterator[None]:
    """This run's own test database refuses connections; every open one is terminated.

    ``ALTER DATABASE ... ALLOW_CONNECTIONS false`` + ``pg_terminate_backend``: only
    this test database is touched, other runs and databases are not."""
    name = connection.settings_dict["NAME"]
    admin = _admin()
    try:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        yield
    finally:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
        )
        admin.close()
        connection.close()  # the next query reconnects


def database_terminate() -> int:
    """Terminate every connection to this run's test database (they reconnect)."""
    name = connection.settings_dict["NAME"]
    with _admin() as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        ).fetchall()
    return len(rows)
