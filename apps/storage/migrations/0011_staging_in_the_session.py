"""Staged values move to a TEMP table of the merging session (apps/storage/staging.py)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("storage", "0010_gdp_key_hash")]

    operations = [migrations.DeleteModel(name="StagedValue")]
