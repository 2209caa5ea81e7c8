from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.collections.models import PLAYLIST_MAX_ENTRIES_PER_CALL, RATING_MAX, RATING_MIN
from apps.collections.playlist_files import M3U8_MAX_BYTES
from apps.library.serializers import TrackListOutput


class MarkOutput(serializers.Serializer):
    favourite_at = serializers.DateTimeField(allow_null=True, help_text="When you starred it; null: not starred.")
    rating = serializers.IntegerField(allow_null=True, help_text="Your rating, 1–5; null: not rated.")


class RatingInput(serializers.Serializer):
    rating = serializers.IntegerField(
        min_value=RATING_MIN, max_value=RATING_MAX, allow_null=True, help_text="1–5, or null to clear it."
    )


class ArtistMarkOutput(MarkOutput):
    name = serializers.CharField()


class PlaylistOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    public = serializers.BooleanField()
    owner = serializers.CharField(source="owner.username", help_text="The owner's user name.")
    version = serializers.IntegerField(help_text="Goes up with every change; sent back as `If-Match` to edit.")
    track_count = serializers.IntegerField(help_text="Entries in the playlist (the owner's view).")
    duration_ms = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class PlaylistEntryOutput(serializers.Serializer):
    position = serializers.IntegerField(help_text="0-based; what remove and move take.")
    track = TrackListOutput()


class PlaylistDetailOutput(PlaylistOutput):
    entries = serializers.SerializerMethodField(help_text="Only the entries of tracks you may see.")

    @extend_schema_field(PlaylistEntryOutput(many=True))
    def get_entries(self, playlist: Any) -> Any:
        # selectors.playlist_entries, read by the view (it needs the user).
        return PlaylistEntryOutput(self.context["entries"], many=True).data


class PlaylistCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=2000, allow_blank=True, default="")
    public = serializers.BooleanField(default=False)
    track_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), max_length=PLAYLIST_MAX_ENTRIES_PER_CALL, default=list
    )


class PlaylistUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    public = serializers.BooleanField(required=False)


class PlaylistEntriesAddInput(serializers.Serializer):
    track_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        min_length=1,
        max_length=PLAYLIST_MAX_ENTRIES_PER_CALL,
        help_text=f"Track ids in order (repeats allowed), at most {PLAYLIST_MAX_ENTRIES_PER_CALL} per call.",
    )
    position = serializers.IntegerField(min_value=0, required=False, help_text="Insert before it; default: append.")


class PlaylistEntriesRemoveInput(serializers.Serializer):
    positions = serializers.ListField(
        child=serializers.IntegerField(min_value=0), min_length=1, max_length=PLAYLIST_MAX_ENTRIES_PER_CALL
    )


class PlaylistEntriesMoveInput(serializers.Serializer):
    from_position = serializers.IntegerField(min_value=0)
    to_position = serializers.IntegerField(min_value=0, help_text="Where the first moved entry ends up.")
    count = serializers.IntegerField(min_value=1, max_value=PLAYLIST_MAX_ENTRIES_PER_CALL, default=1)


class PlaylistImportInput(serializers.Serializer):
    file = serializers.FileField(help_text=f"An M3U/M3U8 file, UTF-8, at most {M3U8_MAX_BYTES} bytes.")
    name = serializers.CharField(max_length=200, required=False, help_text="Default: the file's name.")
    public = serializers.BooleanField(default=False)


class UnmatchedLineOutput(serializers.Serializer):
    line = serializers.IntegerField()
    path = serializers.CharField()


class PlaylistImportOutput(serializers.Serializer):
    playlist = PlaylistOutput()
    unmatched = UnmatchedLineOutput(many=True, help_text="Lines that named no track you can see.")


class SmartRulesField(serializers.JSONField):
    """Checked by the services against apps.collections.smart_rules (the README's schema)."""


class SmartPlaylistOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    rules = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class SmartPlaylistInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    rules = SmartRulesField(help_text="all/any groups of {field, op, value}, order, limit (README).")


class SmartPlaylistUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    rules = SmartRulesField(required=False)


class SmartPreviewInput(serializers.Serializer):
    rules = SmartRulesField()


class SmartPreviewOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="How many tracks the rules select now (after `limit`).")
    tracks = TrackListOutput(many=True, help_text="The first 20 of them.")


class BuiltinSmartPlaylistOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    rules = serializers.JSONField()
