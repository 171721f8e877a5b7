"""The GDP indexes that take every version start with the time, not with a key hash.

A key hash is random: the one-current-version index on it alone, and the time index with it last (a period's
10,000 entities spread over the period's range), had a 1,000,000-record load's 3,000,000 versions land all
over 114 MB and 223 MB of index, more than PostgreSQL's shared buffers, page by page. Replayed COPY of those
versions (PostgreSQL 15, 128 MB of shared buffers): 21-22 s with the old indexes, 15-16 s with these.

- storage_gdp_one_current_version: unique (observed_at, key_hash) where current. The key hash includes the
  time, so this is as unique as the key hash alone; a batch's keys are of a few periods, so its inserts and
  the merge's probes stay in a few places of the index.
- storage_gdp_by_time: (contract, measure, observed_at), for KPI reads. A period's versions are equal keys,
  which the B-tree deduplicates: 19 MB instead of 223 MB, appended to instead of split.
- storage_gdp_past_versions: (observed_at, key_hash) where superseded, for a key's earlier versions (its
  history, the survivor when an override ends), which the time index without the key no longer finds
  quickly. A first load writes none.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('compute', '0005_publication_links'),
        ('host', '0004_datacontract_survivorship'),
        ('storage', '0016_gdp_overrider_without_database_foreign_key'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='goldendatapoint',
            name='storage_gdp_one_current_version',
        ),
        migrations.RemoveIndex(
            model_name='goldendatapoint',
            name='storage_gdp_by_time_key',
        ),
        migrations.AddIndex(
            model_name='goldendatapoint',
            index=models.Index(fields=['contract', 'measure', 'observed_at'], name='storage_gdp_by_time'),
        ),
        migrations.AddIndex(
            model_name='goldendatapoint',
            index=models.Index(condition=models.Q(('recorded_to__isnull', False)), fields=['observed_at', 'key_hash'], name='storage_gdp_past_versions'),
        ),
        migrations.AddConstraint(
            model_name='goldendatapoint',
            constraint=models.UniqueConstraint(condition=models.Q(('recorded_to__isnull', True)), fields=('observed_at', 'key_hash'), name='storage_gdp_one_current_version'),
        ),
    ]
