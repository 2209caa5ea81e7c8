# Reserved for the artwork issue (16): its models go here. Empty until then, so that the search issue's
# migration (0005) can depend on it while both are built at the same time.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("library", "0003_discs_compilations_episodes_truncated")]

    operations: list[migrations.operations.base.Operation] = []
