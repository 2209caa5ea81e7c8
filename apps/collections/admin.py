"""Admin for collections: marks, playlists (M3U8 import and export through the services), smart playlists
(rules checked against the same schema as the API)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

from apps.collections import selectors, services
from apps.collections.models import AlbumMark, ArtistMark, Playlist, PlaylistEntry, SmartPlaylist, TrackMark
from apps.collections.playlist_files import M3U8_MAX_BYTES, m3u8_write
from apps.ops.errors import DomainError


class _MarkAdmin(admin.ModelAdmin):
    list_display = ("__str__", "user", "favourite_at", "rating")
    list_filter = ("rating",)
    date_hierarchy = "favourite_at"


@admin.register(TrackMark)
class TrackMarkAdmin(_MarkAdmin):
    raw_id_fields = ("user", "track")
    list_select_related = ("user", "track")
    search_fields = ("user__username", "track__title")


@admin.register(AlbumMark)
class AlbumMarkAdmin(_MarkAdmin):
    raw_id_fields = ("user", "album")
    list_select_related = ("user", "album")
    search_fields = ("user__username", "album__title")


@admin.register(ArtistMark)
class ArtistMarkAdmin(_MarkAdmin):
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    search_fields = ("user__username", "name")


class PlaylistEntryInline(admin.TabularInline):
    """Read-only: entries change through the services (positions, count, duration and version stay right),
    i.e. the API or the web player."""

    model = PlaylistEntry
    fields = ("position", "track", "added_at")
    readonly_fields = fields
    ordering = ("position",)
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[PlaylistEntry]:
        return super().get_queryset(request).select_related("track")


@admin.action(description="Export as M3U8 (one playlist)")
def export_m3u8(modeladmin: PlaylistAdmin, request: HttpRequest, queryset: QuerySet[Playlist]) -> HttpResponse | None:
    playlists = list(queryset[:2])
    if len(playlists) != 1:
        modeladmin.message_user(request, "Select exactly one playlist to export.", messages.WARNING)
        return None
    playlist = playlists[0]
    # The tracks the staff member may see (staff see every library): the whole playlist.
    items = selectors.playlist_m3u8_items(user=request.user, playlist=playlist)
    response = HttpResponse(m3u8_write(items).encode(), content_type="audio/x-mpegurl; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="playlist-{playlist.pk}.m3u8"'
    return response


def _set_public(modeladmin: PlaylistAdmin, request: HttpRequest, queryset: QuerySet[Playlist], public: bool) -> None:
    changed = 0
    for playlist in queryset.select_related("owner"):
        if playlist.public != public:
            services.playlist_update(user=playlist.owner, playlist_id=playlist.pk, public=public)
            changed += 1
    state = "public" if public else "private"
    modeladmin.message_user(request, f"{changed} playlist(s) made {state}.", messages.SUCCESS)


@admin.action(description="Repair positions, count and duration")
def repair(modeladmin: PlaylistAdmin, request: HttpRequest, queryset: QuerySet[Playlist]) -> None:
    changed = services.playlists_repair(playlist_ids=list(queryset.values_list("pk", flat=True)))
    modeladmin.message_user(request, f"{changed} playlist(s) repaired.", messages.SUCCESS)


@admin.action(description="Make public")
def make_public(modeladmin: PlaylistAdmin, request: HttpRequest, queryset: QuerySet[Playlist]) -> None:
    _set_public(modeladmin, request, queryset, True)


@admin.action(description="Make private")
def make_private(modeladmin: PlaylistAdmin, request: HttpRequest, queryset: QuerySet[Playlist]) -> None:
    _set_public(modeladmin, request, queryset, False)


class PlaylistImportForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("username"))
    name = forms.CharField(max_length=200, required=False, help_text="Default: the file's name.")
    public = forms.BooleanField(required=False)
    file = forms.FileField(help_text=f"An M3U/M3U8 file, UTF-8, at most {M3U8_MAX_BYTES} bytes.")


@admin.register(Playlist)
class PlaylistAdmin(admin.ModelAdmin):
    list_display = ("name", "owner", "public", "track_count", "duration_ms", "version", "updated_at")
    list_filter = ("public",)
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("version", "track_count", "duration_ms", "created_at", "updated_at")
    inlines = [PlaylistEntryInline]
    actions = [export_m3u8, make_public, make_private, repair]

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.import_m3u8_view)
        return [path("import-m3u8/", view, name="collections_playlist_import"), *super().get_urls()]

    def import_m3u8_view(self, request: HttpRequest) -> HttpResponse:
        """An M3U8 for a user, resolved against the libraries that user may see (services.playlist_import_m3u8)."""
        if not self.has_add_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        form = PlaylistImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            if upload.size > M3U8_MAX_BYTES:
                form.add_error("file", f"The file is larger than {M3U8_MAX_BYTES} bytes.")
            else:
                name = form.cleaned_data["name"] or (upload.name or "Imported").rsplit(".", 1)[0][:200] or "Imported"
                try:
                    result = services.playlist_import_m3u8(
                        owner=form.cleaned_data["owner"],
                        name=name,
                        content=upload.read(),
                        public=form.cleaned_data["public"],
                    )
                except DomainError as exc:
                    form.add_error("file", exc.message if not exc.fields else "; ".join(sum(exc.fields.values(), [])))
                else:
                    playlist = result.playlist
                    self.message_user(
                        request, f"Imported “{playlist.name}”: {playlist.track_count} entries.", messages.SUCCESS
                    )
                    for line in result.unmatched[:50]:
                        self.message_user(request, f"Line {line.line} matched no track: {line.path}", messages.WARNING)
                    if len(result.unmatched) > 50:
                        self.message_user(request, f"… and {len(result.unmatched) - 50} more.", messages.WARNING)
                    return HttpResponseRedirect(reverse("admin:collections_playlist_change", args=[playlist.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Import an M3U8 playlist",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/collections/playlist/import_m3u8.html", context)


class SmartPlaylistForm(forms.ModelForm):
    class Meta:
        model = SmartPlaylist
        fields = ["owner", "name", "rules"]

    def clean_rules(self) -> Any:
        rules = self.cleaned_data["rules"]
        try:
            services.smart_rules_check(rules=rules)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        return rules


@admin.register(SmartPlaylist)
class SmartPlaylistAdmin(admin.ModelAdmin):
    form = SmartPlaylistForm
    list_display = ("name", "owner", "updated_at")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username")
    raw_id_fields = ("owner",)
