# Artwork.unreferenced_since: when artwork_collect first found nothing referencing a cover (its grace period).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0008_track_created"),
    ]

    operations = [
        migrations.AddField(
            model_name="artwork",
            name="unreferenced_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
