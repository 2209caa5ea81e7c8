# Reserved for the search issue (17): its extensions, functions and indexes go here. Empty until then, so
# that the lyrics/loudness migration (0006) can depend on it while both are built at the same time.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("library", "0004_artwork")]

    operations: list[migrations.operations.base.Operation] = []
