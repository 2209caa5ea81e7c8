from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.library.artwork.storage import ArtworkStorage
from apps.library.search import (
    SEARCH_LIMIT_MAX,
    SEARCH_QUERY_MAX_CHARS,
    SEARCH_QUERY_MIN_CHARS,
    SearchTerm,
    SearchTermInvalid,
    search_term,
)


class ScanJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    library = serializers.IntegerField(source="library_id")
    status = serializers.CharField()
    trigger = serializers.CharField()
    seen = serializers.IntegerField()
    added = serializers.IntegerField()
    updated = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    missing = serializers.IntegerField()
    restored = serializers.IntegerField()
    # Declared fields, which DRF's metaclass takes off the class: they do not shadow Serializer.errors and
    # Field.error_messages, as djangorestframework-stubs assume.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    tracks_changed = serializers.IntegerField()
    error_messages = serializers.ListField(child=serializers.CharField())  # type: ignore[assignment]
    failure = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class LibraryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    track_count = serializers.IntegerField()
    scan_interval_minutes = serializers.IntegerField(allow_null=True)
    last_scan = ScanJobOutput(allow_null=True)


class LibraryStaffOutput(LibraryOutput):
    # Optional in the schema: the one documented answer is this serializer, and non-staff get no folders.
    root_paths = serializers.ListField(child=serializers.CharField(), required=False, help_text="Staff only.")


class CoverOutput(serializers.Serializer):
    """A cover's signed, immutable URLs per format and size (`64`, `128`, `300`, `600`, `original`), its size and
    dominant colour (a placeholder while it loads): a list needs no request per row to show covers."""

    color = serializers.CharField(help_text="Dominant colour, #rrggbb.")
    width = serializers.IntegerField(help_text="Of the original.")
    height = serializers.IntegerField()
    webp = serializers.DictField(child=serializers.CharField())
    jpeg = serializers.DictField(child=serializers.CharField())

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return {
            "color": instance.color,
            "width": instance.width,
            "height": instance.height,
            **ArtworkStorage.urls(instance.hash),
        }


class CoverInput(serializers.Serializer):
    size = serializers.RegexField(
        r"^(?:[0-9]{1,6}|original)$",
        required=False,
        help_text="Pixels (snapped up to 64, 128, 300, 600, else the original) or `original`.",
    )
    format = serializers.ChoiceField(
        choices=["webp", "jpeg", "jpg"], required=False, help_text="Else by Accept: WebP when accepted, else JPEG."
    )


class AlbumRef(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()


class TrackListOutput(serializers.Serializer):
    id = serializers.IntegerField()
    library = serializers.IntegerField(source="library_id")
    album = AlbumRef(allow_null=True)
    title = serializers.CharField()
    artists = serializers.ListField(child=serializers.CharField())
    album_artist = serializers.CharField()
    album_artists = serializers.ListField(child=serializers.CharField())
    genres = serializers.ListField(child=serializers.CharField())
    disc_number = serializers.IntegerField(allow_null=True)
    disc_subtitle = serializers.CharField()
    track_number = serializers.IntegerField(allow_null=True)
    year = serializers.IntegerField(allow_null=True)
    published_at = serializers.DateTimeField(allow_null=True, help_text="Podcast episodes: when it was published.")
    duration_ms = serializers.IntegerField()
    # The caller's marks (apps.collections), annotated by selectors.with_marks; None where a payload's rows
    # come from a query that has not joined them.
    favourite_at = serializers.DateTimeField(allow_null=True, default=None, help_text="When you starred it.")
    rating = serializers.IntegerField(allow_null=True, default=None, help_text="Your rating, 1–5.")
    cover = CoverOutput(allow_null=True, help_text="Its own picture, else its album's; null while none is ready.")


class AudioFileOutput(serializers.Serializer):
    id = serializers.IntegerField()
    path = serializers.CharField()
    size_bytes = serializers.IntegerField()
    format = serializers.CharField()
    codec = serializers.CharField()
    bitrate_kbps = serializers.IntegerField(allow_null=True)
    sample_rate_hz = serializers.IntegerField(allow_null=True)
    channels = serializers.IntegerField(allow_null=True)
    duration_ms = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="The file holds less audio than its header claims.")
    missing = serializers.BooleanField()
    error = serializers.CharField()


class ChapterOutput(serializers.Serializer):
    index = serializers.IntegerField()
    title = serializers.CharField()
    start_ms = serializers.IntegerField()
    end_ms = serializers.IntegerField()


class TrackDetailOutput(TrackListOutput):
    missing = serializers.BooleanField()
    description = serializers.CharField()
    tags = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    files = AudioFileOutput(many=True)
    chapters = ChapterOutput(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class AlbumOutput(serializers.Serializer):
    id = serializers.IntegerField()
    library = serializers.IntegerField(source="library_id")
    title = serializers.CharField()
    album_artist = serializers.CharField()
    album_artists = serializers.ListField(child=serializers.CharField())
    artists = serializers.ListField(child=serializers.CharField(), help_text="Everyone credited on its tracks.")
    genres = serializers.ListField(child=serializers.CharField())
    year = serializers.IntegerField(allow_null=True)
    compilation = serializers.BooleanField()
    release_type = serializers.CharField()
    author = serializers.CharField(help_text="A podcast show's author.")
    track_count = serializers.IntegerField()
    duration_ms = serializers.IntegerField()
    # The caller's marks (apps.collections), annotated by selectors.with_marks; None where a payload's rows
    # come from a query that has not joined them.
    favourite_at = serializers.DateTimeField(allow_null=True, default=None, help_text="When you starred it.")
    rating = serializers.IntegerField(allow_null=True, default=None, help_text="Your rating, 1–5.")
    cover = CoverOutput(allow_null=True, help_text="Null while none is ready.")


class AlbumDetailOutput(AlbumOutput):
    tracks = TrackListOutput(many=True, source="tracks.all")


class NameCountOutput(serializers.Serializer):
    name = serializers.CharField()
    track_count = serializers.IntegerField()
    album_count = serializers.IntegerField()


class NameCountFilterInput(serializers.Serializer):
    library = serializers.IntegerField(required=False, min_value=1, help_text="Only this library.")
    q = serializers.CharField(
        required=False, allow_blank=True, max_length=200, help_text="Case-insensitive part of the name."
    )


class LyricsLineOutput(serializers.Serializer):
    start_ms = serializers.IntegerField()
    text = serializers.CharField()


class LyricsOutput(serializers.Serializer):
    """A track's lyrics: synced lines (empty when only plain text is known) and the plain text."""

    synced = serializers.SerializerMethodField()
    plain = serializers.CharField()
    language = serializers.CharField(help_text="As tagged (ISO 639-2, e.g. 'eng'); empty when unknown.")
    origin = serializers.CharField(
        source="source",
        help_text="Where they were read: sidecar.lrc, SYLT, USLT, ©lyr, LYRICS, sidecar.txt...; empty: none.",
    )

    @extend_schema_field(LyricsLineOutput(many=True))
    def get_synced(self, lyrics: Any) -> list[dict[str, Any]]:
        return [{"start_ms": start_ms, "text": text} for start_ms, text in lyrics.synced]


class SearchInput(serializers.Serializer):
    q = serializers.CharField(
        trim_whitespace=False,
        help_text=(
            f"What to look for, {SEARCH_QUERY_MIN_CHARS}–{SEARCH_QUERY_MAX_CHARS} characters: accents and case "
            "ignored, typos forgiven (4 characters or more)."
        ),
    )
    limit = serializers.IntegerField(
        required=False, default=10, min_value=1, max_value=SEARCH_LIMIT_MAX, help_text="At most this many of each kind."
    )

    def validate_q(self, value: str) -> SearchTerm:
        try:
            return search_term(value)
        except SearchTermInvalid as exc:
            raise serializers.ValidationError(str(exc)) from exc


class SearchArtistOutput(serializers.Serializer):
    name = serializers.CharField()
    album_count = serializers.IntegerField(help_text="Visible albums that credit them.")


class SearchOutput(serializers.Serializer):
    artists = SearchArtistOutput(many=True, help_text="Music artists (album artists and everyone credited).")
    albums = AlbumOutput(many=True, help_text="Music albums.")
    tracks = TrackListOutput(many=True, help_text="Music tracks (title, artists or album title matched).")
    shows = AlbumOutput(many=True, help_text="Podcast shows.")
    episodes = TrackListOutput(many=True, help_text="Podcast episodes.")
    books = TrackListOutput(many=True, help_text="Audiobooks.")


def _finite(value: float | None) -> float | None:
    return None if value is None or value != value or value in (float("inf"), float("-inf")) else round(value, 2)


class LoudnessOutput(serializers.Serializer):
    """EBU R128 figures and the gains a player applies (track mode, or album mode for an album played in
    order). Loudness and peaks are null when unknown or minus infinity (digital_silence)."""

    origin = serializers.CharField(help_text="measured (in the transcode's decode), tags (ReplayGain/R128), none")
    integrated_lufs = serializers.SerializerMethodField()
    range_lu = serializers.SerializerMethodField()
    true_peak_dbtp = serializers.SerializerMethodField()
    digital_silence = serializers.SerializerMethodField()
    track_gain_db = serializers.FloatField(allow_null=True, help_text="To reference_lufs, true peak <= -1 dBTP.")
    album_lufs = serializers.SerializerMethodField()
    album_gain_db = serializers.FloatField(allow_null=True)
    reference_lufs = serializers.FloatField()
    silences = serializers.SerializerMethodField(help_text="Spoken word: [[start_ms, end_ms], ...].")

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_integrated_lufs(self, info: Any) -> float | None:
        return _finite(info.integrated_lufs)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_range_lu(self, info: Any) -> float | None:
        return _finite(info.range_lu)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_true_peak_dbtp(self, info: Any) -> float | None:
        return _finite(info.true_peak_dbtp)

    @extend_schema_field(serializers.BooleanField())
    def get_digital_silence(self, info: Any) -> bool:
        return info.integrated_lufs == float("-inf")

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_album_lufs(self, info: Any) -> float | None:
        return _finite(info.album_lufs)

    @extend_schema_field(serializers.ListField(child=serializers.ListField(child=serializers.IntegerField())))
    def get_silences(self, info: Any) -> list[list[int]]:
        return [[start_ms, end_ms] for start_ms, end_ms in info.silences_ms]
