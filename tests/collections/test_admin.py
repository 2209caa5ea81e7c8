"""Collections admin: M3U8 import (the owner's libraries, unmatched lines reported, refused files), export
action, public/private actions through the services, smart playlist rules checked, pages with bounded
queries."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.collections import services
from apps.collections.models import Playlist, SmartPlaylist
from tests.factories import AudioFileFactory, LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    library = LibraryFactory(root="/srv/music")
    tracks = [TrackFactory(library=library, title=t, group_key=f"Album/{t}.mp3", duration_ms=2000) for t in "AB"]
    for track in tracks:
        AudioFileFactory(track=track)
    listener = UserFactory(username="listener")
    LibraryAccessFactory(user=listener, library=library)
    staff = Client()
    staff.force_login(UserFactory(username="admin", is_staff=True, is_superuser=True))
    return {"tracks": tracks, "listener": listener, "staff": staff}


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_import_an_m3u8_for_a_user(world):
    staff, listener = world["staff"], world["listener"]
    page = staff.get("/admin/collections/playlist/")
    assert b"/admin/collections/playlist/import-m3u8/" in page.content
    file = SimpleUploadedFile("trip.m3u8", b"#EXTM3U\nAlbum/B.mp3\nAlbum/A.mp3\nAlbum/None.mp3\n")
    response = staff.post("/admin/collections/playlist/import-m3u8/", {"owner": listener.pk, "file": file}, follow=True)
    playlist = Playlist.objects.get()
    assert (playlist.owner, playlist.name, playlist.track_count, playlist.public) == (listener, "trip", 2, False)
    assert list(playlist.entries.order_by("position").values_list("track__title", flat=True)) == ["B", "A"]
    assert messages_of(response) == ["Imported “trip”: 2 entries.", "Line 4 matched no track: Album/None.mp3"]


def test_a_refused_m3u8_shows_why_and_makes_nothing(world):
    file = SimpleUploadedFile("bad.m3u8", b"Album/../../etc/passwd\n")
    response = world["staff"].post(
        "/admin/collections/playlist/import-m3u8/", {"owner": world["listener"].pk, "file": file}
    )
    assert response.status_code == 200
    assert "Line 1: A path may not contain &#x27;..&#x27;." in response.content.decode()
    assert Playlist.objects.count() == 0


def test_export_and_visibility_actions(world, django_assert_max_num_queries):
    listener, staff = world["listener"], world["staff"]
    first = services.playlist_create(owner=listener, name="One", track_ids=[t.pk for t in world["tracks"]])
    second = services.playlist_create(owner=listener, name="Two")
    exported = staff.post("/admin/collections/playlist/", {"action": "export_m3u8", "_selected_action": [first.pk]})
    assert exported.content.decode() == (
        "#EXTM3U\n#EXTINF:2,A artist - A\nAlbum/A.mp3\n#EXTINF:2,B artist - B\nAlbum/B.mp3\n"
    )
    both = staff.post(
        "/admin/collections/playlist/",
        {"action": "make_public", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert messages_of(both) == ["2 playlist(s) made public."]
    assert sorted(Playlist.objects.values_list("public", "version")) == [(True, 2), (True, 2)]
    with django_assert_max_num_queries(12):  # session, user, count, rows with owners, messages
        assert staff.get("/admin/collections/playlist/").status_code == 200
    assert staff.get(f"/admin/collections/playlist/{first.pk}/change/").status_code == 200


def test_smart_playlist_rules_are_checked_in_the_admin(world):
    staff, listener = world["staff"], world["listener"]
    response = staff.post(
        "/admin/collections/smartplaylist/add/",
        {"owner": listener.pk, "name": "Bad", "rules": '{"all": [{"field": "colour", "op": "is", "value": 1}]}'},
    )
    assert response.status_code == 200
    assert "Bad rule at rules.all[0].field: Unknown field" in response.content.decode()
    assert SmartPlaylist.objects.count() == 0
    good = staff.post(
        "/admin/collections/smartplaylist/add/",
        {"owner": listener.pk, "name": "Good", "rules": '{"all": [{"field": "year", "op": "gt", "value": 1990}]}'},
    )
    assert good.status_code == 302
    assert SmartPlaylist.objects.get().rules == {"all": [{"field": "year", "op": "gt", "value": 1990}]}
