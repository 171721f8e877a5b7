"""On PostgreSQL, the raw layer refuses UPDATE and DELETE at the database, whoever asks.

Deletes pass only inside a transaction that set `aurum.retention = on` (the retention
job). TRUNCATE stays possible for operators (and for test database flushes).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION storage_rawrecord_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('aurum.retention', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'storage_rawrecord is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER storage_rawrecord_append_only
    BEFORE UPDATE OR DELETE ON storage_rawrecord
    FOR EACH ROW EXECUTE FUNCTION storage_rawrecord_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS storage_rawrecord_append_only ON storage_rawrecord;
DROP FUNCTION IF EXISTS storage_rawrecord_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("storage", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
