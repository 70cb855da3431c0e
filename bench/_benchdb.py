"""A fresh PostgreSQL database for a bench run (``DATABASE_URL``), migrated."""

from __future__ import annotations

import os


def database_fresh() -> None:
    """Drop and recreate the database named in ``DATABASE_URL``, set Django up, migrate."""
    import django
    import psycopg

    base, name = os.environ["DATABASE_URL"].rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
