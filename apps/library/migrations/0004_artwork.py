# The artwork issue (16): Artwork (content-addressed images and their variants) and the cover references on
# Album, Track and AudioFile. Kept under this name: the search migration (0005) depends on it.
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("library", "0003_discs_compilations_episodes_truncated"),
    ]

    operations = [
        migrations.AddField(
            model_name="album",
            name="artwork_error",
            field=models.TextField(blank=True, db_default=""),
        ),
        migrations.AddField(
            model_name="album",
            name="artwork_key",
            field=models.CharField(blank=True, db_default="", max_length=2200),
        ),
        migrations.AddField(
            model_name="audiofile",
            name="artwork_error",
            field=models.CharField(blank=True, db_default="", max_length=500),
        ),
        migrations.AddField(
            model_name="library",
            name="artwork_fingerprint",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.CreateModel(
            name="Artwork",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hash", models.CharField(max_length=64, unique=True)),
                ("mime", models.CharField(max_length=32)),
                ("width", models.PositiveIntegerField()),
                ("height", models.PositiveIntegerField()),
                ("size_bytes", models.BigIntegerField()),
                (
                    "source",
                    models.CharField(
                        choices=[("folder", "Folder image"), ("embedded", "Embedded picture"), ("upload", "Uploaded")],
                        max_length=16,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("pending", "Pending"), ("ready", "Ready"), ("failed", "Failed")],
                        default="pending",
                        max_length=16,
                    ),
                ),
                ("color", models.CharField(blank=True, max_length=7)),
                ("error", models.TextField(blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["pending", "ready", "failed"])), name="artwork_status_valid"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="album",
            name="artwork",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="library.artwork",
            ),
        ),
        migrations.AddField(
            model_name="audiofile",
            name="artwork",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="library.artwork",
            ),
        ),
        migrations.AddField(
            model_name="track",
            name="artwork",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="library.artwork",
            ),
        ),
    ]
