"""Golden Data Points keep no dimensions_key column: the key hash holds the dimension set's key (models.key_hash),
and the 64-character text on every version cost the merge's COPY 11 % of its server time."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("storage", "0021_raw_payload_as_json_text")]

    operations = [migrations.RemoveField(model_name="goldendatapoint", name="dimensions_key")]
