"""The GDP indexes of keys start with the contract; the (contract, measure, observed_at) index is gone.

Server-side COPY of a 1,000,000-record load's 2,985,000 versions (PostgreSQL 15, 128 MB of shared buffers,
interleaved runs): 15.7-16.2 s with the indexes of 0017, 12.8-14.0 s with these; with the primary key alone,
8.1-8.5 s. A varchar in a B-tree's key is what costs: (contract, measure, observed_at, key_hash) as the unique
index instead of these cost as much as the old two (16.2-17.4 s).

- storage_gdp_one_current_version: unique (contract, observed_at, key_hash) where current. A batch's keys are of
  one contract and mostly of a few periods, so its inserts and the merge's probes stay in a few places.
- storage_gdp_past_versions: (contract, observed_at, key_hash) where superseded.
- Together they serve a contract's reads over time (KPIs, lineage, publication evidence): a query that admits
  both current and past versions (as of a moment) reads the two by a bitmap OR; the measure is checked on the
  rows, which share their pages with the record's other measures.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('compute', '0005_publication_links'),
        ('host', '0004_datacontract_survivorship'),
        ('storage', '0019_gdp_recorded_from_defaults_to_the_transaction_start'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='goldendatapoint',
            name='storage_gdp_one_current_version',
        ),
        migrations.RemoveIndex(
            model_name='goldendatapoint',
            name='storage_gdp_by_time',
        ),
        migrations.RemoveIndex(
            model_name='goldendatapoint',
            name='storage_gdp_past_versions',
        ),
        migrations.AddIndex(
            model_name='goldendatapoint',
            index=models.Index(condition=models.Q(('recorded_to__isnull', False)), fields=['contract', 'observed_at', 'key_hash'], name='storage_gdp_past_versions'),
        ),
        migrations.AddConstraint(
            model_name='goldendatapoint',
            constraint=models.UniqueConstraint(condition=models.Q(('recorded_to__isnull', True)), fields=('contract', 'observed_at', 'key_hash'), name='storage_gdp_one_current_version'),
        ),
    ]
