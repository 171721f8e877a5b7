"""On PostgreSQL, raw records keep their payload as `json` (its text, checked) instead of `jsonb`.

The raw layer stores each record's canonical JSON text and shows it whole; nothing queries a payload by its parts.
`jsonb` parsed every payload into a tree on the way in: server-side COPY of 1,000,000 raw records of the ingest
benchmark (PostgreSQL 15, the table's four indexes, three interleaved runs each): 10.7-11.8 s of CPU as `jsonb`,
7.9-8.3 s as `json`, 7.3-8.6 s as plain text. The column is rewritten once (jsonb to json is an assignment cast).
"""

import apps.storage.models
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('storage', '0020_gdp_indexes_by_contract_and_time'),
    ]

    operations = [
        migrations.AlterField(
            model_name='rawrecord',
            name='payload',
            field=apps.storage.models.JsonTextField(),
        ),
    ]
