"""On PostgreSQL, the raw layer's index of record hashes is a hash index, not a B-tree.

Nothing reads storage_rawrecord.hash but equality (a record delivered before: compute.pipeline's
earlier duplicates). A SHA-256 lands at a random place in a B-tree, whose 64-character keys make
it as large as the table's other indexes together: inserting the hashes of 100,000 records took
PostgreSQL 0.85 s of CPU (a COPY of bench/ingest.py's raw rows with and without the index), a hash
index of 4-byte codes 0.4 s, and it stays small as the raw layer grows. Django's models.Index cannot
say so portably (SQLite has no hash indexes): the model keeps the index by name, and this migration
changes its kind on PostgreSQL only.
"""

from django.db import migrations

INDEX, TABLE = "storage_raw_by_hash", "storage_rawrecord"


def index_using(method: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        schema_editor.execute(f"CREATE INDEX {INDEX} ON {TABLE} USING {method} (hash)")

    return run


class Migration(migrations.Migration):
    dependencies = [("storage", "0013_gdp_one_index_for_batch_and_raw")]

    operations = [migrations.RunPython(index_using("hash"), index_using("btree"))]
