"""The web player's collection pages, server-rendered: stars and ratings on every track row and album,
the Favourites page, playlists (a viewer sees only what they may see; only the owner gets the tools), smart
playlists (built-ins, stored rules, the editor's schema)."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.test import Client

from apps.collections import services
from apps.library.models import Album
from tests.factories import LibraryAccessFactory, LibraryFactory, TrackFactory, UserFactory
from tests.web.test_pages import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    shared = LibraryFactory(name="Shared")
    hidden = LibraryFactory(name="Hidden")
    album = Album.objects.create(library=shared, title="Blue", track_count=2)
    one = TrackFactory(library=shared, album=album, title="One", track_number=1)
    two = TrackFactory(library=shared, album=album, title="Two", track_number=2)
    secret = TrackFactory(library=hidden, title="Secret")
    owner = UserFactory(username="owner", password=PASSWORD)
    viewer = UserFactory(username="viewer", password=PASSWORD)
    LibraryAccessFactory(user=owner, library=shared)
    LibraryAccessFactory(user=owner, library=hidden)
    LibraryAccessFactory(user=viewer, library=shared)
    clients = {}
    for name, user in (("as_owner", owner), ("as_viewer", viewer)):
        clients[name] = Client()
        clients[name].force_login(user)
    return {"album": album, "one": one, "two": two, "secret": secret, "owner": owner, "viewer": viewer, **clients}


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def test_track_rows_and_albums_carry_the_users_star_and_rating(world, django_assert_max_num_queries):
    services.favourite_set(user=world["owner"], item=world["one"], favourite=True)
    services.rating_set(user=world["owner"], item=world["two"], rating=4)
    services.favourite_set(user=world["owner"], item=world["album"], favourite=True)
    body = page(world["as_owner"], "/tracks/")
    assert re.search(rf'data-favourite="{world["one"].pk}" data-kind="tracks" aria-pressed="true"', body)
    assert re.search(rf'data-favourite="{world["two"].pk}" data-kind="tracks" aria-pressed="false"', body)
    assert re.search(rf'data-rating="{world["two"].pk}"[^>]*>\s*<option value="">–</option>\s*'
                     r'<option value="1">1★</option><option value="2">2★</option><option value="3">3★</option>'
                     r'<option value="4" selected>4★</option>', body)  # fmt: skip
    assert f'data-add-to-playlist="{world["one"].pk}"' in body
    # Someone else's marks never show.
    assert 'aria-pressed="true"' not in page(world["as_viewer"], "/tracks/")
    album = page(world["as_owner"], f"/albums/{world['album'].pk}/")
    assert f'data-favourite="{world["album"].pk}" data-kind="albums" aria-pressed="true"' in album
    assert f'data-add-to-playlist="{world["one"].pk},{world["two"].pk}"' in album


def test_the_favourites_page(world):
    services.favourite_set(user=world["owner"], item=world["two"], favourite=True)
    services.favourite_set(user=world["owner"], item=world["secret"], favourite=True)
    body = page(world["as_owner"], "/favourites/")
    assert f'data-queue="{world["secret"].pk},{world["two"].pk}"' in body  # newest star first
    assert "No starred album." in body and "No starred artist." in body
    assert "No starred track yet" in page(world["as_viewer"], "/favourites/")


def test_playlist_pages_show_what_the_viewer_may_see_and_tools_to_the_owner(world):
    playlist = services.playlist_create(
        owner=world["owner"], name="Mix", public=True, track_ids=[world["two"].pk, world["secret"].pk, world["one"].pk]
    )
    mine = page(world["as_owner"], f"/playlists/{playlist.pk}/")
    assert re.findall(r'data-entry-position="(\d+)" draggable="true"', mine) == ["0", "1", "2"]
    assert f'data-version="{playlist.version}" data-mine="true"' in mine
    assert "data-playlist-delete" in mine
    theirs = page(world["as_viewer"], f"/playlists/{playlist.pk}/")
    assert re.findall(r'data-entry-position="(\d+)"', theirs) == ["0", "2"]
    assert "Secret" not in theirs
    assert "draggable" not in theirs and "data-move" not in theirs and "data-playlist-delete" not in theirs
    assert f'data-queue="{world["two"].pk},{world["one"].pk}"' in theirs
    listed = page(world["as_viewer"], "/playlists/")
    assert "Mix</a>" in listed and "by owner" in listed
    private = services.playlist_create(owner=world["owner"], name="Private")
    assert world["as_viewer"].get(f"/playlists/{private.pk}/").status_code == 404


def test_smart_playlist_pages(world):
    smart = services.smart_playlist_create(
        owner=world["owner"], name="Twos", rules={"all": [{"field": "title", "op": "contains", "value": "tw"}]}
    )
    body = page(world["as_owner"], f"/smart-playlists/{smart.pk}/")
    assert "1 track<" in body and ">Two</a>" in body and ">One</a>" not in body
    schema = json.loads(html.unescape(re.search(r'data-schema="([^"]+)"', body).group(1)))
    assert schema["fields"]["rating"] == {"kind": "rating", "ops": ["is", "gt", "lt", "between"]}
    assert json.loads(html.unescape(re.search(r'data-rules="([^"]+)"', body).group(1))) == smart.rules
    listing = page(world["as_owner"], "/smart-playlists/")
    assert "Books in progress</a>" in listing and "Twos</a>" in listing
    builtin = page(world["as_owner"], "/smart-playlists/builtin/recently-added/")
    assert "3 tracks<" in builtin
    assert world["as_viewer"].get(f"/smart-playlists/{smart.pk}/").status_code == 404
    assert world["as_viewer"].get("/smart-playlists/builtin/nope/").status_code == 404
