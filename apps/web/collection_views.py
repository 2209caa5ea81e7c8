"""The web player's collection pages: favourites, playlists, smart playlists. Reads through
apps.collections.selectors; every change (star, rate, create, add, move, remove, save rules) goes from the
browser to the API (static/web/js/collections.js), so the pages stay GET only."""

from __future__ import annotations

import json
import random

from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.collections import selectors
from apps.collections.models import PLAYLIST_MAX_ENTRIES_PER_CALL
from apps.collections.smart_rules import FIELDS, LIBRARY_KINDS, MAX_LIMIT, ORDERS
from apps.library.models import Track
from apps.web.views import PAGE_SIZE, web_page

FAVOURITES_SHOWN = 200


@web_page
def favourites(request: HttpRequest) -> HttpResponse:
    user = request.user
    tracks = list(selectors.favourite_tracks(user=user)[:FAVOURITES_SHOWN])
    return render(
        request,
        "web/favourites.html",
        {
            "tracks": tracks,
            "queue_ids": ",".join(str(track.pk) for track in tracks),
            "albums": list(selectors.favourite_albums(user=user).select_related("library")[:FAVOURITES_SHOWN]),
            "artists": selectors.artist_marks(user=user, favourites_only=True),
        },
    )


@web_page
def playlist_list(request: HttpRequest) -> HttpResponse:
    playlists = selectors.playlist_list(user=request.user).order_by("name", "id")
    return render(request, "web/playlists.html", {"playlists": playlists, "user_id": request.user.pk})


@web_page
def playlist_detail(request: HttpRequest, playlist_id: int) -> HttpResponse:
    playlist = selectors.playlist_get(user=request.user, playlist_id=playlist_id)
    entries = selectors.playlist_entries(user=request.user, playlist=playlist)
    ids = [entry.track.pk for entry in entries]
    shuffled = ids[:]
    random.shuffle(shuffled)
    return render(
        request,
        "web/playlist.html",
        {
            "playlist": playlist,
            "entries": entries,
            "queue_ids": ",".join(map(str, ids)),
            "shuffled_ids": ",".join(map(str, shuffled)),
            "shuffled_first": shuffled[0] if shuffled else None,
            "mine": playlist.owner_id == request.user.pk,
            "max_per_call": PLAYLIST_MAX_ENTRIES_PER_CALL,
        },
    )


def _editor_schema() -> str:
    """What the rule editor offers (the same tables the server checks against), for collections.js."""
    fields = {name: {"kind": kind.value, "ops": list(ops)} for name, (kind, ops) in FIELDS.items()}
    return json.dumps({"fields": fields, "orders": list(ORDERS), "kinds": list(LIBRARY_KINDS), "max_limit": MAX_LIMIT})


@web_page
def smart_playlist_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/smart_playlists.html",
        {
            "smart_playlists": selectors.smart_playlist_list(user=request.user).order_by("name", "id"),
            "builtins": selectors.smart_playlist_builtins(),
            "editor_schema": _editor_schema(),
        },
    )


def _smart_page(request: HttpRequest, *, name: str, rules: object, smart_id: int | None) -> HttpResponse:
    tracks = selectors.smart_playlist_tracks(user=request.user, rules=rules)
    # SmartTracks is what a Paginator uses of a sequence: count() and slices.
    page: Page[Track] = Paginator(tracks, PAGE_SIZE).get_page(request.GET.get("page"))  # type: ignore[arg-type]
    rows = list(page)
    return render(
        request,
        "web/smart_playlist.html",
        {
            "name": name,
            "smart_id": smart_id,
            "rules_json": json.dumps(rules),
            "tracks": page,
            "rows": rows,
            "queue_ids": ",".join(str(track.pk) for track in rows),
            "editor_schema": _editor_schema(),
        },
    )


@web_page
def smart_playlist_detail(request: HttpRequest, smart_playlist_id: int) -> HttpResponse:
    smart = selectors.smart_playlist_get(user=request.user, smart_playlist_id=smart_playlist_id)
    return _smart_page(request, name=smart.name, rules=smart.rules, smart_id=smart.pk)


@web_page
def smart_playlist_builtin(request: HttpRequest, slug: str) -> HttpResponse:
    builtin = selectors.smart_playlist_builtin(slug=slug)
    return _smart_page(request, name=builtin.name, rules=builtin.rules, smart_id=None)
