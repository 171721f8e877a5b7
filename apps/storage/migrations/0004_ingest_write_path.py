"""The ingest write path: fewer indexes to maintain per row, no foreign keys on the staging table.

- GoldenDataPoint: contract_id had an index of its own besides storage_gdp_by_time (which
  starts with it), raw_record_id two (its own and storage_gdp_by_raw); superseded_by_batch_id
  and overridden_by_id, empty on nearly every row, get partial indexes of the rows that have one.
- RawRecord: batch_id is served by the (batch, position) unique index; hash gets a plain index,
  without the varchar_pattern_ops twin that db_index=True adds (it is only compared for equality).
- StagedValue: transient rows the pipeline writes in the transaction of their raw records and
  deletes itself: no database foreign keys (their per-row checks cost more than the COPY) and
  no single-column indexes beside (batch, position).

On PostgreSQL only the indexes and constraints are dropped (Django's own AlterField would also
drop and re-add, i.e. re-validate over the whole table, the foreign keys that stay). Other
databases keep their old indexes and constraints: they are harmless there, and SQLite would
rebuild the tables to drop them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FORWARD = """
DROP INDEX IF EXISTS storage_goldendatapoint_contract_id_2398cb8a;
DROP INDEX IF EXISTS storage_goldendatapoint_raw_record_id_c62b6606;
DROP INDEX IF EXISTS storage_goldendatapoint_superseded_by_batch_id_d03acc54;
DROP INDEX IF EXISTS storage_goldendatapoint_overridden_by_id_ad7ba4f1;
DROP INDEX IF EXISTS storage_rawrecord_batch_id_ebaa3da7;
DROP INDEX IF EXISTS storage_rawrecord_hash_77a20a0c;
DROP INDEX IF EXISTS storage_rawrecord_hash_77a20a0c_like;
ALTER TABLE storage_stagedvalue DROP CONSTRAINT IF EXISTS storage_stagedvalue_batch_id_a3c9a562_fk_storage_i;
ALTER TABLE storage_stagedvalue DROP CONSTRAINT IF EXISTS storage_stagedvalue_raw_record_id_cb27471c_fk_storage_r;
DROP INDEX IF EXISTS storage_stagedvalue_batch_id_a3c9a562;
DROP INDEX IF EXISTS storage_stagedvalue_raw_record_id_cb27471c;
"""
BACKWARD = """
CREATE INDEX storage_goldendatapoint_contract_id_2398cb8a ON storage_goldendatapoint (contract_id);
CREATE INDEX storage_goldendatapoint_raw_record_id_c62b6606 ON storage_goldendatapoint (raw_record_id);
CREATE INDEX storage_goldendatapoint_superseded_by_batch_id_d03acc54 ON storage_goldendatapoint (superseded_by_batch_id);
CREATE INDEX storage_goldendatapoint_overridden_by_id_ad7ba4f1 ON storage_goldendatapoint (overridden_by_id);
CREATE INDEX storage_rawrecord_batch_id_ebaa3da7 ON storage_rawrecord (batch_id);
CREATE INDEX storage_rawrecord_hash_77a20a0c ON storage_rawrecord (hash);
CREATE INDEX storage_rawrecord_hash_77a20a0c_like ON storage_rawrecord (hash varchar_pattern_ops);
ALTER TABLE storage_stagedvalue ADD CONSTRAINT storage_stagedvalue_batch_id_a3c9a562_fk_storage_i
    FOREIGN KEY (batch_id) REFERENCES storage_ingestionbatch (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE storage_stagedvalue ADD CONSTRAINT storage_stagedvalue_raw_record_id_cb27471c_fk_storage_r
    FOREIGN KEY (raw_record_id) REFERENCES storage_rawrecord (id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX storage_stagedvalue_batch_id_a3c9a562 ON storage_stagedvalue (batch_id);
CREATE INDEX storage_stagedvalue_raw_record_id_cb27471c ON storage_stagedvalue (raw_record_id);
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("compute", "0002_initial"),
        ("host", "0004_datacontract_survivorship"),
        ("storage", "0003_staging_and_unique_values"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="goldendatapoint",
                    name="contract",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="host.datacontract",
                    ),
                ),
                migrations.AlterField(
                    model_name="goldendatapoint",
                    name="overridden_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="goldendatapoint",
                    name="raw_record",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="storage.rawrecord",
                    ),
                ),
                migrations.AlterField(
                    model_name="goldendatapoint",
                    name="superseded_by_batch",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="superseded_data_points",
                        to="storage.ingestionbatch",
                    ),
                ),
                migrations.AlterField(
                    model_name="rawrecord",
                    name="batch",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="raw_records",
                        to="storage.ingestionbatch",
                    ),
                ),
                migrations.AlterField(
                    model_name="rawrecord",
                    name="hash",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="stagedvalue",
                    name="batch",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="storage.ingestionbatch",
                    ),
                ),
                migrations.AlterField(
                    model_name="stagedvalue",
                    name="raw_record",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="storage.rawrecord",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
        migrations.AddIndex(
            model_name="goldendatapoint",
            index=models.Index(
                condition=models.Q(("superseded_by_batch__isnull", False)),
                fields=["superseded_by_batch"],
                name="storage_gdp_by_superseding",
            ),
        ),
        migrations.AddIndex(
            model_name="goldendatapoint",
            index=models.Index(
                condition=models.Q(("overridden_by__isnull", False)),
                fields=["overridden_by"],
                name="storage_gdp_by_overrider",
            ),
        ),
        migrations.AddIndex(
            model_name="rawrecord",
            index=models.Index(fields=["hash"], name="storage_raw_by_hash"),
        ),
    ]
