"""On PostgreSQL, the index of GDP versions by batch and raw record is a BRIN index, not a B-tree.

It serves the lineage reads (a batch's versions, a raw record's) and the retention job. As a B-tree it
was the dearest of the table's indexes to keep: the merge writes a unit's versions in key hash order,
so their raw record ids land at random places in it; a COPY of bench/ingest.py's 300,000 versions took
PostgreSQL 0.8-1.0 s more CPU with it than without, against nothing measurable for a BRIN index, whose
ranges are summarized once a batch's versions are in (storage.merge.summarize_new_versions, 0.2-0.3 s
for the same rows; VACUUM and, where autovacuum runs, `autosummarize` do it too). A batch's versions are
appended together, so its ranges are few; a raw record's versions are within its unit's ranges (a raw
record's lineage reads some 500 pages, a few milliseconds). minmax-multi keeps a range selective when
it also holds versions of much older batches (superseded rows rewritten at the end of the table).

Django's models.Index cannot say so portably (SQLite has no BRIN): the model keeps the index by name,
and this migration changes its kind on PostgreSQL only.
"""

from django.db import migrations

INDEX, TABLE = "storage_gdp_by_batch_raw", "storage_goldendatapoint"
BRIN = (
    f"CREATE INDEX {INDEX} ON {TABLE} USING brin (batch_id int8_minmax_multi_ops, raw_record_id int8_minmax_multi_ops)"
    " WITH (pages_per_range = 32, autosummarize = on)"
)
BTREE = f"CREATE INDEX {INDEX} ON {TABLE} (batch_id, raw_record_id)"


def index_as(create: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
        schema_editor.execute(create)

    return run


class Migration(migrations.Migration):
    dependencies = [("storage", "0014_raw_hash_index_is_a_hash_index")]

    operations = [migrations.RunPython(index_as(BRIN), index_as(BTREE))]
