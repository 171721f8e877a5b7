"""On PostgreSQL, the evidence ledger refuses UPDATE and DELETE at the database, whoever asks.

There is no escape hatch: evidence is never changed or deleted. TRUNCATE stays possible
for operators (and for test database flushes); it fires no row trigger.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION trust_evidencerecord_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'trust_evidencerecord is append-only: ' || TG_OP || ' refused',
        ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER trust_evidencerecord_append_only
    BEFORE UPDATE OR DELETE ON trust_evidencerecord
    FOR EACH ROW EXECUTE FUNCTION trust_evidencerecord_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS trust_evidencerecord_append_only ON trust_evidencerecord;
DROP FUNCTION IF EXISTS trust_evidencerecord_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("trust", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
