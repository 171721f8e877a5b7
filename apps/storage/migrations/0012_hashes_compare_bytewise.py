"""On PostgreSQL, the SHA-256 hex columns compare bytewise (COLLATE "C").

A database's default collation (often en_US.UTF-8 or C.UTF-8) compares text through strcoll, which
costs every insert into the raw layer's hash index a few dozen calls; hex digits order the same
either way, and nothing reads these columns but equality. The raw COPY of a 100,000-record batch
took PostgreSQL 0.2-0.4 s less (bench/ingest.py's payload, INSERT … SELECT of the same rows). The
model does not record the collation (SQLite has no "C"): an AlterField of these columns must keep it.
"""

from django.db import migrations

COLUMNS = (("storage_rawrecord", "hash"), ("storage_uniquevalue", "value_hash"))


def collate(collation: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, column in COLUMNS:
            schema_editor.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(64) COLLATE "{collation}"')

    return run


class Migration(migrations.Migration):
    dependencies = [("storage", "0011_staging_in_the_session")]

    operations = [migrations.RunPython(collate("C"), collate("default"))]
