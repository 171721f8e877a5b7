"""The id sequences of raw records and GDP versions hand each database session a block of values at a time.

A bulk load takes one id per row: a raw record's from bulk.next_ids, a GDP version's from the column's default,
each a nextval() that locks the sequence's page and writes WAL every 32 values, ~0.35 µs of server CPU a row
(1 s of a 1,000,000-record first load's three GDPs a record). With a cache, a session takes `CACHE` values at
once and hands them out from memory. Ids stay unique; they may have gaps (a session's unused values are lost
when it ends) and, across concurrent sessions, need not follow the order of the inserts: Aurum orders
versions by their times, and uses an id only to break ties within one session's writes. PostgreSQL only.
"""

from django.db import migrations

CACHE = 1024
TABLES = ("storage_rawrecord", "storage_goldendatapoint")


def _alter(schema_editor, cache):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in TABLES:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            (sequence,) = cursor.fetchone()
        schema_editor.execute(f"ALTER SEQUENCE {sequence} CACHE {cache}")


def cache_ids(apps, schema_editor):
    _alter(schema_editor, CACHE)


def uncache_ids(apps, schema_editor):
    _alter(schema_editor, 1)


class Migration(migrations.Migration):
    dependencies = [("storage", "0017_gdp_indexes_by_time_first")]

    operations = [migrations.RunPython(cache_ids, uncache_ids)]
