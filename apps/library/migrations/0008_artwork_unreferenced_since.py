# Artwork.unreferenced_since: when artwork_collect first found nothing referencing a cover (its grace period).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0007_search_words"),
    ]

    operations = [
        migrations.AddField(
            model_name="artwork",
            name="unreferenced_since",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
