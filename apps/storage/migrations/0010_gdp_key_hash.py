"""Golden Data Points get a 128-bit key hash; the one-current-version index holds it instead of the key's six
columns, and the time index ends with it instead of the entity and dimensions keys."""

from django.db import migrations, models

BATCH = 5000
# models.KEY_HASH_SQL as it was over this table, when it had a dimensions_key column (migration 0022 drops it).
KEY_HASH_SQL = (
    "md5({t}.tenant_id::text || chr(31) || {t}.contract_id::text || chr(31) || {t}.measure || chr(31) "
    "|| {t}.dimensions_key || chr(31) || (extract(epoch FROM {t}.observed_at) * 1000000)::bigint::text || chr(31) "
    "|| {t}.entity_key)::uuid"
)


def fill_key_hashes(apps, schema_editor):
    from apps.storage.models import key_hash

    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"UPDATE storage_goldendatapoint g SET key_hash = {KEY_HASH_SQL.format(t='g')} WHERE key_hash IS NULL"
        )
    else:
        GoldenDataPoint = apps.get_model("storage", "GoldenDataPoint")
        _fill(GoldenDataPoint.objects.filter(key_hash__isnull=True), lambda g: (g.tenant_id, g.contract_id), key_hash)
    StagedValue = apps.get_model("storage", "StagedValue")
    staged = StagedValue.objects.filter(key_hash__isnull=True).select_related("batch__contract_version")
    _fill(staged, lambda s: (s.batch.tenant_id, s.batch.contract_version.contract_id), key_hash)


def _fill(queryset, owner, key_hash):
    while rows := list(queryset[:BATCH]):
        for row in rows:
            row.key_hash = key_hash(*owner(row), row.measure, row.dimensions_key, row.observed_at, row.entity_key)
        queryset.model.objects.bulk_update(rows, ["key_hash"])


class Migration(migrations.Migration):
    dependencies = [("storage", "0009_gdp_by_time_with_key")]

    operations = [
        migrations.AddField(
            model_name="goldendatapoint", name="key_hash", field=models.UUIDField(editable=False, null=True)
        ),
        migrations.AddField(model_name="stagedvalue", name="key_hash", field=models.UUIDField(null=True)),
        migrations.RunPython(fill_key_hashes, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(model_name="goldendatapoint", name="key_hash", field=models.UUIDField(editable=False)),
        migrations.AlterField(model_name="stagedvalue", name="key_hash", field=models.UUIDField()),
        migrations.RemoveConstraint(model_name="goldendatapoint", name="storage_gdp_one_current_version"),
        migrations.AddConstraint(
            model_name="goldendatapoint",
            constraint=models.UniqueConstraint(
                condition=models.Q(recorded_to__isnull=True),
                fields=("key_hash",),
                name="storage_gdp_one_current_version",
            ),
        ),
        migrations.RemoveIndex(model_name="goldendatapoint", name="storage_gdp_by_time_key"),
        migrations.AddIndex(
            model_name="goldendatapoint",
            index=models.Index(
                fields=["contract", "measure", "observed_at", "key_hash"], name="storage_gdp_by_time_key"
            ),
        ),
    ]
