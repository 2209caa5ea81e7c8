from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q, Value

from apps.library.search import ArrayConcat, SearchNorm, SearchNormArray

if TYPE_CHECKING:
    from apps.accounts.types import RequestUser


class LibraryKind(models.TextChoices):
    MUSIC = "music", "Music"
    AUDIOBOOK = "audiobook", "Audiobooks"
    PODCAST = "podcast", "Podcasts"


class LibraryQuerySet(models.QuerySet["Library"]):
    def visible_to(self, user: RequestUser) -> LibraryQuerySet:
        """Staff see every library; others only those they were granted."""
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self
        return self.filter(accesses__user=user)


class Library(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=LibraryKind.choices, default=LibraryKind.MUSIC)
    root_paths = ArrayField(
        models.CharField(max_length=1024),
        help_text="Absolute folders scanned for audio files, one per line.",
    )
    settings = models.JSONField(default=dict, blank=True)
    scan_interval_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Rescan automatically this often (empty: only when asked).",
    )
    # Set before a scan writes files and cleared once tracks match them again: a scan that died in
    # between leaves it set, and the next scan rebuilds tracks even if no file changed since.
    tracks_stale = models.BooleanField(default=False, editable=False)
    # The folder images found by the last scan (a hash of their paths, sizes and mtimes): covers are resolved
    # again only when it or a file changed, so an unchanged rescan stays a walk.
    artwork_fingerprint = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    last_scan = models.ForeignKey(
        "ScanJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LibraryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "libraries"
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=LibraryKind.values), name="library_kind_valid"),
            models.CheckConstraint(condition=Q(root_paths__len__gte=1), name="library_has_root"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean_fields(self, exclude=None) -> None:
        """The root folders are checked (and normalised) by the one rule the admin form and scans share:
        absolute, existing, readable, and not a system folder, the server's own or another library's."""
        from apps.library.services.libraries import library_root_paths_clean  # it imports this module

        errors: dict[str, list[ValidationError]] = {}
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if "root_paths" not in (exclude or ()) and "root_paths" not in errors:
            try:
                self.root_paths = library_root_paths_clean(list(self.root_paths or []), library_id=self.pk)
            except ValidationError as exc:
                errors["root_paths"] = exc.error_list
        if errors:
            raise ValidationError(errors)


class LibraryAccess(models.Model):
    """A grant: `user` may see `library` and everything in it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="library_accesses")
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="accesses")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "library access"
        verbose_name_plural = "library access"
        constraints = [models.UniqueConstraint(fields=["user", "library"], name="library_access_unique")]

    def __str__(self) -> str:
        return f"{self.user} → {self.library}"


class ArtworkSource(models.TextChoices):
    FOLDER = "folder", "Folder image"
    EMBEDDED = "embedded", "Embedded picture"
    UPLOAD = "upload", "Uploaded"


class ArtworkStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # original stored, variants not made yet
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Artwork(models.Model):
    """One image, stored once by the SHA-256 of its bytes (the same cover in 14 tracks is one row and one
    file), with its pre-sized variants (apps.library.artwork.storage owns the layout on disk)."""

    hash = models.CharField(max_length=64, unique=True)
    mime = models.CharField(max_length=32)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    size_bytes = models.BigIntegerField()
    source = models.CharField(max_length=16, choices=ArtworkSource.choices)
    status = models.CharField(max_length=16, choices=ArtworkStatus.choices, default=ArtworkStatus.PENDING)
    # "#rrggbb": the placeholder shown while the image loads.
    color = models.CharField(max_length=7, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When artwork_collect first found nothing referencing it (None while something does): deleted, with its
    # files, once that is older than ARTWORK_COLLECT_GRACE_S and still true.
    unreferenced_since = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=ArtworkStatus.values), name="artwork_status_valid")
        ]

    def __str__(self) -> str:
        return f"{self.hash[:12]} ({self.width}×{self.height} {self.mime})"

    @property
    def is_ready(self) -> bool:
        return self.status == ArtworkStatus.READY


class Album(models.Model):
    """A music album, a podcast show, or an audiobook series."""

    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="albums")
    title = models.CharField(max_length=500)
    # The album artists joined for display ("A, B"), part of the album's identity with the title.
    album_artist = models.CharField(max_length=500, blank=True)
    # The album artists as tagged (TPE2 "A/B", repeated fields), "Various Artists" for an untagged compilation.
    album_artists = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    # Everyone credited on the album's tracks: an artist who appears on a compilation finds it here.
    artists = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    genres = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    compilation = models.BooleanField(default=False)
    # MusicBrainz release type(s) where tagged: "album", "album; compilation", "soundtrack"...
    release_type = models.CharField(max_length=200, blank=True)
    # A podcast show's author (its episodes' album artist, else artist tag).
    author = models.CharField(max_length=500, blank=True)
    track_count = models.PositiveIntegerField(default=0)
    duration_ms = models.BigIntegerField(default=0)
    artwork = models.ForeignKey(Artwork, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # What the cover was taken from ("folder:<path>:<size>:<mtime_ns>", "embedded:<hash>", "upload:<hash>"):
    # a rescan that finds the same source again reads nothing.
    artwork_key = models.CharField(max_length=2200, blank=True, db_default="")
    # Why an image met on the last scan (or upload) was not used; the previous good cover stays meanwhile.
    artwork_error = models.TextField(blank=True, db_default="")
    # What search matches (apps.library.search), kept by PostgreSQL: the title and the names, lowercased and
    # without accents, indexed by migration 0005_search.
    search_title = models.GeneratedField(
        expression=SearchNorm("title"), output_field=models.TextField(), db_persist=True
    )
    search_names = models.GeneratedField(
        expression=SearchNormArray(ArrayConcat("album_artists", "artists")),
        output_field=models.TextField(),
        db_persist=True,
    )
    # Gated over all blocks of the album's measured tracks (apps.streaming.analysis), null until one is.
    loudness_lufs = models.FloatField(null=True, blank=True)
    true_peak_dbtp = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "album_artist"]
        constraints = [
            models.UniqueConstraint(fields=["library", "title", "album_artist"], name="album_unique_per_library")
        ]
        indexes = [GinIndex(fields=["artists"], name="album_artists_gin")]

    def __str__(self) -> str:
        return f"{self.title} — {self.album_artist}" if self.album_artist else self.title

    @property
    def cover(self) -> Artwork | None:
        """The cover to show, once its sizes are made (select_related("artwork") in lists)."""
        artwork = self.artwork if self.artwork_id else None
        return artwork if artwork is not None and artwork.is_ready else None


class TrackQuerySet(models.QuerySet["Track"]):
    def visible_to(self, user: RequestUser) -> TrackQuerySet:
        return self.filter(library__in=Library.objects.visible_to(user))

    def listed(self) -> TrackQuerySet:
        """What listings show: tracks with at least one file on disk."""
        return self.filter(missing=False)


class Track(models.Model):
    """The playable unit: a music track, a podcast episode, or a whole audiobook (all its files)."""

    # No index of its own: the unique (library, group_key) index leads with library_id.
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="tracks", db_index=False)
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.SET_NULL, related_name="tracks")
    # Identity within the library: the file for music and podcasts, the book folder for audiobooks.
    group_key = models.CharField(max_length=2048)
    title = models.CharField(max_length=500)
    artists = ArrayField(models.CharField(max_length=500), default=list, blank=True)
    album_artist = models.CharField(max_length=500, blank=True)
    # db_default: the scanner writes tracks with its own INSERT statements.
    album_artists = ArrayField(models.CharField(max_length=500), default=list, blank=True, db_default=Value([]))
    genres = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    disc_number = models.PositiveSmallIntegerField(null=True, blank=True)
    disc_subtitle = models.CharField(max_length=500, blank=True, db_default="")
    track_number = models.PositiveIntegerField(null=True, blank=True)
    year = models.PositiveSmallIntegerField(null=True, blank=True)
    # Podcast episodes: when it was published (date tag, else the file's mtime); null for other kinds.
    published_at = models.DateTimeField(null=True, blank=True)
    description = models.TextField(blank=True, db_default="")
    duration_ms = models.BigIntegerField(default=0)
    tags = models.JSONField(default=dict, blank=True)
    source_fingerprint = models.CharField(max_length=64)
    missing = models.BooleanField(default=False)
    # The track's own picture (embedded in its first file that has one); clients fall back to the album's.
    artwork = models.ForeignKey(Artwork, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # What search matches (apps.library.search), kept by PostgreSQL, indexed by migration 0005_search.
    search_title = models.GeneratedField(
        expression=SearchNorm("title"), output_field=models.TextField(), db_persist=True
    )
    search_artists = models.GeneratedField(
        expression=SearchNormArray("artists"), output_field=models.TextField(), db_persist=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TrackQuerySet.as_manager()

    class Meta:
        ordering = ["title", "id"]
        constraints = [models.UniqueConstraint(fields=["library", "group_key"], name="track_unique_per_library")]
        indexes = [
            GinIndex(fields=["artists"], name="track_artists_gin"),
            GinIndex(fields=["album_artists"], name="track_album_artists_gin"),
            GinIndex(fields=["genres"], name="track_genres_gin"),
            models.Index(fields=["album", "disc_number", "track_number"], name="track_album_order"),
            models.Index(fields=["library", "-published_at"], name="track_published"),
            # Smart playlists' "added in the last N days" and "newest first" (apps.collections.smart_query):
            # without it both read every track (recently added: 206 ms of its plan on 100 000 tracks).
            models.Index(fields=["-created_at", "id"], name="track_created"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def cover(self) -> Artwork | None:
        """The track's own picture, else its album's (a podcast episode: else its show's), once its sizes are made
        (select_related("artwork", "album__artwork") in lists)."""
        artwork = self.artwork if self.artwork_id else None
        if artwork is not None and artwork.is_ready:
            return artwork
        return self.album.cover if self.album_id and self.album is not None else None


class AudioFile(models.Model):
    """One file on disk. A file that could not be read is kept with its `error`; a scan never stops on it."""

    # No index of its own: the unique (library, root, path) index leads with library_id.
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="files", db_index=False)
    track = models.ForeignKey(Track, null=True, blank=True, on_delete=models.SET_NULL, related_name="files")
    root = models.CharField(max_length=1024, help_text="The library root this file was found under.")
    path = models.CharField(max_length=2048, help_text="Relative to the root.")
    group_key = models.CharField(max_length=2048)
    size_bytes = models.BigIntegerField()
    mtime_ns = models.BigIntegerField()
    format = models.CharField(max_length=16, blank=True)
    codec = models.CharField(max_length=32, blank=True)
    bitrate_kbps = models.PositiveIntegerField(null=True, blank=True)
    sample_rate_hz = models.PositiveIntegerField(null=True, blank=True)
    channels = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.BigIntegerField(default=0)
    # The file holds less audio than its header claims (cut short): duration_ms is the real length,
    # from the file's size (scanner, CBR MP3) or from what the transcoder decoded.
    truncated = models.BooleanField(default=False, db_default=False)
    tags = models.JSONField(default=dict, blank=True)
    # Chapters embedded in this file, in its own timeline: [{"title", "start_ms", "end_ms"}].
    embedded_chapters = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    # The embedded front cover read with the tags; a bad one leaves the previous picture and says why.
    artwork = models.ForeignKey(Artwork, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    artwork_error = models.CharField(max_length=500, blank=True, db_default="")
    # Lyrics from the file's tags and its <name>.lrc / <name>.txt sidecars (apps.library.scanner.lyrics):
    # {"synced": [[start_ms, text]...], "plain", "language", "source"}, {} when none. Why some were cut or
    # refused (a non-UTF-8 sidecar, a 5 MB tag) in lyrics_error; lyrics_sidecar keys the sidecars' sizes and
    # mtimes so that a changed .lrc has the file read again.
    lyrics = models.JSONField(default=dict, blank=True, db_default=Value({}, output_field=models.JSONField()))
    lyrics_error = models.CharField(max_length=500, blank=True, db_default="")
    lyrics_sidecar = models.CharField(max_length=200, blank=True, db_default="")
    missing = models.BooleanField(default=False)
    scanned_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["root", "path"]
        constraints = [models.UniqueConstraint(fields=["library", "root", "path"], name="audiofile_unique_path")]
        indexes = [
            models.Index(fields=["library", "group_key"], name="audiofile_group"),
        ]

    def __str__(self) -> str:
        return self.path


class TrackLoudness(models.Model):
    """What the transcode's analysis branch measured of a track's decoded audio (apps.streaming.analysis):
    EBU R128 integrated loudness (-inf for digital silence), loudness range, true peak, the histogram of its
    gating blocks (album loudness is gated over all of an album's blocks) and, for spoken word, its silences.
    Keyed by the source fingerprint it was measured on: unchanged audio is never measured twice. Its own
    table so that track lists do not carry the histogram and the silences."""

    track = models.OneToOneField(Track, on_delete=models.CASCADE, primary_key=True, related_name="loudness")
    source_fingerprint = models.CharField(max_length=64)
    integrated_lufs = models.FloatField()
    range_lu = models.FloatField()
    true_peak_dbtp = models.FloatField()
    # {"<loudness in 0.1 LU steps>": block count}: 400 ms blocks every 100 ms above the -70 LUFS gate.
    block_histogram = models.JSONField(default=dict, blank=True)
    # [start_ms, end_ms, start_ms, end_ms, ...]: silences of spoken word (empty for music).
    silences_ms = ArrayField(models.BigIntegerField(), default=list, blank=True)
    measured_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.integrated_lufs:.1f} LUFS"


class Chapter(models.Model):
    track = models.ForeignKey(Track, on_delete=models.CASCADE, related_name="chapters")
    index = models.PositiveIntegerField()
    title = models.CharField(max_length=500)
    start_ms = models.BigIntegerField()
    end_ms = models.BigIntegerField()

    class Meta:
        ordering = ["track", "index"]
        constraints = [
            models.UniqueConstraint(fields=["track", "index"], name="chapter_unique_index"),
            models.CheckConstraint(
                condition=Q(start_ms__gte=0) & Q(end_ms__gte=models.F("start_ms")), name="chapter_span"
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ScanStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ScanTrigger(models.TextChoices):
    MANUAL = "manual", "Admin or API"
    SCHEDULE = "schedule", "Schedule"
    COMMAND = "command", "Command line"
    SOURCE_CHANGED = "source_changed", "Files changed under a transcode"


ACTIVE_SCAN_STATUSES = (ScanStatus.QUEUED, ScanStatus.RUNNING)


class ScanJob(models.Model):
    library = models.ForeignKey(Library, on_delete=models.CASCADE, related_name="scan_jobs")
    status = models.CharField(max_length=16, choices=ScanStatus.choices, default=ScanStatus.QUEUED)
    trigger = models.CharField(max_length=16, choices=ScanTrigger.choices, default=ScanTrigger.MANUAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    seen = models.PositiveIntegerField(default=0)
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    missing = models.PositiveIntegerField(default=0)
    restored = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    tracks_changed = models.PositiveIntegerField(default=0)
    error_messages = models.JSONField(default=list, blank=True, help_text="The first problems met.")
    failure = models.TextField(blank=True, help_text="Why the scan as a whole failed.")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The scan lock, kept by the database: at most one queued or running scan per library.
            models.UniqueConstraint(
                fields=["library"],
                condition=Q(status__in=ACTIVE_SCAN_STATUSES),
                name="scanjob_one_active_per_library",
            ),
            models.CheckConstraint(condition=Q(status__in=ScanStatus.values), name="scanjob_status_valid"),
        ]

    def __str__(self) -> str:
        return f"Scan #{self.pk} of {self.library.name} ({self.get_status_display().lower()})"

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
