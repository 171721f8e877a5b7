"""What the benchmarks share: a throwaway database on the server DATABASE_URL names, and peak RSS."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit


def key_hash_sql(t: str) -> str:
    """storage.models.key_hash in SQL, over a row alias `t` with a GDP's key columns, for the GDPs a benchmark writes
    itself: the dimension set's key is the MD5 of the dimensions' jsonb text, not the SHA-256 of their canonical
    JSON that the pipeline takes, so no ingest would find these keys (no benchmark ingests into them)."""
    return (f"md5({t}.tenant_id::text || chr(31) || {t}.contract_id::text || chr(31) || {t}.measure || chr(31) "
            f"|| md5({t}.dimensions::text) || chr(31) || (extract(epoch FROM {t}.observed_at) * 1000000)::bigint::text "
            f"|| chr(31) || {t}.entity_key)::uuid")  # fmt: skip


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def admin_connect(url: str):
    """A connection to the server, for CREATE/DROP DATABASE: the maintenance database, else the URL's."""
    import psycopg

    try:
        return psycopg.connect(with_database(url, "postgres"), autocommit=True)
    except psycopg.OperationalError:
        return psycopg.connect(url, autocommit=True)


def postgres_url(script: str) -> str | None:
    """DATABASE_URL when it names PostgreSQL; else None, after saying that the benchmark is skipped."""
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme in ("postgres", "postgresql", "pgsql"):
        return url
    print(f"{script} measures against PostgreSQL: set DATABASE_URL=postgres://user@host:port/db "
          "(it creates and drops its own database there). Skipped.")  # fmt: skip
    return None


@contextlib.contextmanager
def throwaway_database(url: str, prefix: str = "aurum_bench") -> Iterator[str]:
    """A new database on `url`'s server (its URL), dropped on the way out, also on failure, Ctrl-C or
    SIGTERM; Django's connections to it are closed first."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` runs
    with admin_connect(url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    print(f"database {name} created on {urlsplit(url).hostname}:{urlsplit(url).port or 5432}")
    try:
        yield with_database(url, name)
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with admin_connect(url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        print(f"database {name} dropped")
