from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.postgres.forms import SimpleArrayField
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from apps.library.artwork.images import BadImage, image_check
from apps.library.artwork.storage import ArtworkStorage
from apps.library.models import (
    Album,
    Artwork,
    AudioFile,
    Chapter,
    Library,
    LibraryAccess,
    ScanJob,
    ScanStatus,
    Track,
)
from apps.library.services import scan_request
from apps.library.services.artwork import album_cover_upload

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    class _ListedTracks(TypedDict):  # what LibraryAdmin.get_queryset annotates
        listed_tracks: int


class LibraryForm(forms.ModelForm):
    root_paths = SimpleArrayField(
        forms.CharField(max_length=1024),
        delimiter="\n",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=(
            "Absolute folders on this server, one per line. Each must exist and be readable, and may not be a "
            "system folder (/, /etc, /usr, /var/lib…), the server's own data, or inside or around another "
            "library's folder."
        ),
    )

    class Meta:
        model = Library
        # Checked by Library.clean_fields (library_root_paths_clean), as everywhere else. `settings` (the
        # JSON field) is left out: no per-library setting is read by any code yet, so a raw `{}` box would
        # only invite edits that do nothing.
        fields = ["name", "kind", "root_paths", "scan_interval_minutes"]


class LibraryAccessInline(admin.TabularInline):
    model = LibraryAccess
    extra = 1
    raw_id_fields = ("user",)
    verbose_name = "user with access"
    verbose_name_plural = "users with access (staff see every library)"


@admin.action(description="Scan now")
def scan_now(modeladmin: LibraryAdmin, request: HttpRequest, queryset: QuerySet[Library]) -> None:
    assert request.user.is_authenticated  # the admin lets only signed-in staff in (narrows the type)
    for library in queryset:
        job, created = scan_request(library=library, requested_by=request.user)
        link = format_html('<a href="{}">scan #{}</a>', reverse("admin:library_scanjob_change", args=[job.pk]), job.pk)
        if job.status == ScanStatus.FAILED:  # the broker could not take it
            modeladmin.message_user(request, format_html("{}: {}: {}", library.name, link, job.failure), messages.ERROR)
        elif created:
            modeladmin.message_user(request, format_html("{}: {} queued.", library.name, link), messages.SUCCESS)
        else:
            modeladmin.message_user(
                request, format_html("{}: {} is already {}.", library.name, link, job.status), messages.WARNING
            )


@admin.register(Library)
class LibraryAdmin(admin.ModelAdmin):
    form = LibraryForm
    inlines = [LibraryAccessInline]
    actions = [scan_now]
    list_display = ("name", "kind", "roots", "tracks", "last_scan_status", "last_scan_counts", "last_scan_finished")
    list_filter = ("kind",)
    search_fields = ("name",)
    list_select_related = ("last_scan",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Library]:
        return super().get_queryset(request).annotate(listed_tracks=Count("tracks", filter=Q(tracks__missing=False)))

    @admin.display(description="folders")
    def roots(self, library: Library) -> str:
        return format_html_join(mark_safe("<br>"), "{}", ((path,) for path in library.root_paths))

    @admin.display(description="tracks", ordering="listed_tracks")
    def tracks(self, library: WithAnnotations[Library, _ListedTracks]) -> int:
        return library.listed_tracks

    @admin.display(description="last scan")
    def last_scan_status(self, library: Library) -> str:
        job = library.last_scan
        if job is None:
            return "never"
        url = reverse("admin:library_scanjob_change", args=[job.pk])
        return format_html('<a href="{}">#{} {}</a>', url, job.pk, job.get_status_display())

    @admin.display(description="seen / added / updated / missing / errors")
    def last_scan_counts(self, library: Library) -> str:
        job = library.last_scan
        return f"{job.seen} / {job.added} / {job.updated} / {job.missing} / {job.errors}" if job else "—"

    @admin.display(description="finished")
    def last_scan_finished(self, library: Library):
        return library.last_scan.finished_at if library.last_scan else None


@admin.register(ScanJob)
class ScanJobAdmin(admin.ModelAdmin):
    list_display = ("id", "library", "status", "trigger", "seen", "added", "updated", "missing", "errors", "created_at")
    list_filter = ("status", "trigger", "library")
    list_select_related = ("library",)
    readonly_fields = [field.name for field in ScanJob._meta.fields] + ["problems"]
    exclude = ("error_messages",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ScanJob]:
        return super().get_queryset(request).select_related("library")  # its title names the library

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: ScanJob | None = None) -> bool:
        return False

    @admin.display(description="problems met (first 50)")
    def problems(self, job: ScanJob) -> str:
        if not job.error_messages:
            return "none"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((m,) for m in job.error_messages)))


class GenreFilter(admin.SimpleListFilter):
    title = "genre"
    parameter_name = "genre"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        # The 50 most used genres, from the GIN-indexed array in one statement.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT g, count(*) FROM library_track, unnest(genres) g GROUP BY g ORDER BY count(*) DESC, g LIMIT 50"
            )
            return [(genre, f"{genre} ({count})") for genre, count in cursor]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Track]) -> QuerySet[Track]:
        return queryset.filter(genres__contains=[self.value()]) if self.value() else queryset


class HasErrorFilter(admin.SimpleListFilter):
    title = "read error"
    parameter_name = "has_error"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Has an error"), ("no", "Readable")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        # A track "has an error" when any of its files has one: filter/exclude on "some file's error is not
        # empty" (exclude(files__error="") would keep only tracks whose every file failed).
        unreadable = {"error__gt" if queryset.model is AudioFile else "files__error__gt": ""}
        if self.value() == "yes":
            return queryset.filter(**unreadable).distinct()
        if self.value() == "no":
            return queryset.exclude(**unreadable)
        return queryset


class ChapterInline(admin.TabularInline):
    model = Chapter
    extra = 0
    fields = ("index", "title", "start_ms", "end_ms")
    readonly_fields = fields
    can_delete = False


class AudioFileInline(admin.TabularInline):
    model = AudioFile
    extra = 0
    fields = ("path", "codec", "bitrate_kbps", "duration_ms", "truncated", "missing", "error")
    readonly_fields = fields
    can_delete = False
    show_change_link = True


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "title", "artist_names", "album", "library", "duration", "missing", "updated_at")
    list_display_links = ("thumbnail", "title")
    list_filter = ("library", GenreFilter, "missing", HasErrorFilter)
    search_fields = ("title", "album__title", "album_artist")
    list_select_related = ("album", "library", "artwork", "album__artwork")
    raw_id_fields = ("album",)
    readonly_fields = (
        "cover_preview",
        "artwork",
        "library",
        "group_key",
        "source_fingerprint",
        "created_at",
        "updated_at",
    )
    inlines = [AudioFileInline, ChapterInline]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Track], search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            results |= queryset.filter(artists__contains=[search_term.strip()])
        return results, may_have_duplicates

    @admin.display(description="artists")
    def artist_names(self, track: Track) -> str:
        return ", ".join(track.artists)

    @admin.display(description="duration", ordering="duration_ms")
    def duration(self, track: Track) -> str:
        seconds = track.duration_ms // 1000
        return f"{seconds // 3600}:{seconds // 60 % 60:02}:{seconds % 60:02}"

    @admin.display(description="cover")
    def thumbnail(self, track: Track) -> str:
        return cover_img(track.cover, 64)

    @admin.display(description="cover (its own picture, else its album's)")
    def cover_preview(self, track: Track) -> str:
        return cover_img(track.cover, 300)


@admin.register(AudioFile)
class AudioFileAdmin(admin.ModelAdmin):
    list_display = (
        "path",
        "library",
        "format",
        "codec",
        "bitrate_kbps",
        "duration_ms",
        "truncated",
        "missing",
        "error",
    )
    # Truncated: less audio than the header claims (cut short by a failed copy or download); the duration is
    # what is really there, from the file's size (scanner) or from the transcoder's decode.
    list_filter = ("library", "format", "truncated", "missing", HasErrorFilter)
    search_fields = ("path", "error")
    list_select_related = ("library",)
    raw_id_fields = ("track",)
    readonly_fields = [field.name for field in AudioFile._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


def cover_img(artwork: Artwork | None, size: int) -> str:
    """A cover's variant of `size` px through its signed /art/ URL (what clients get), or a dash."""
    if artwork is None:
        return "—"
    shown = min(size, 200)
    url = ArtworkStorage.url(artwork.hash, size, "jpeg")
    return format_html('<img src="{}" width="{}" height="{}" alt="" loading="lazy">', url, shown, shown)


class AlbumForm(forms.ModelForm):
    cover_upload = forms.FileField(
        required=False,
        label="Replace the cover",
        help_text="JPEG, PNG or WebP. An uploaded cover wins over folder images and embedded pictures, and stays "
        "through rescans.",
    )

    class Meta:
        model = Album
        exclude = ["artwork", "artwork_key"]

    def clean_cover_upload(self) -> bytes | None:
        upload = self.cleaned_data.get("cover_upload")
        if not upload:
            return None
        # Checked here for the form's error message; album_cover_upload checks it again (any caller).
        if upload.size > settings.ARTWORK_MAX_BYTES:
            raise forms.ValidationError(
                f"image of {upload.size / 1e6:.1f} MB, over the {settings.ARTWORK_MAX_BYTES / 1e6:.1f} MB limit"
            )
        data = upload.read()
        try:
            image_check(data, max_bytes=settings.ARTWORK_MAX_BYTES, max_pixels=settings.ARTWORK_MAX_PIXELS)
        except BadImage as exc:
            raise forms.ValidationError(str(exc)) from None
        return data


@admin.register(Album)
class AlbumAdmin(admin.ModelAdmin):
    form = AlbumForm
    list_display = ("thumbnail", "title", "album_artist", "library", "year", "track_count", "cover_problem")
    list_display_links = ("thumbnail", "title")
    list_filter = ("library",)
    search_fields = ("title", "album_artist")
    list_select_related = ("library", "artwork")
    readonly_fields = ("cover_preview", "cover_source", "artwork_error")

    @admin.display(description="cover")
    def thumbnail(self, album: Album) -> str:
        return cover_img(album.cover, 64)

    @admin.display(description="cover")
    def cover_preview(self, album: Album) -> str:
        return cover_img(album.cover, 300)

    @admin.display(description="cover taken from")
    def cover_source(self, album: Album) -> str:
        return album.artwork_key.split(":", 1)[0] if album.artwork_key else "—"

    @admin.display(description="cover problem", boolean=False)
    def cover_problem(self, album: Album) -> str:
        return album.artwork_error.splitlines()[0] if album.artwork_error else ""

    def save_model(self, request: HttpRequest, obj: Album, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        data = form.cleaned_data.get("cover_upload")
        if data:
            artwork = album_cover_upload(album=obj, data=data)
            self.message_user(
                request,
                f"New cover stored ({artwork.width}×{artwork.height}); its sizes are being made.",
                messages.INFO,
            )


@admin.register(Artwork)
class ArtworkAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "hash", "mime", "width", "height", "size_bytes", "source", "status", "color")
    list_filter = ("status", "source", "mime")
    search_fields = ("hash",)
    readonly_fields = [field.name for field in Artwork._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="cover")
    def thumbnail(self, artwork: Artwork) -> str:
        return cover_img(artwork if artwork.is_ready else None, 64)
