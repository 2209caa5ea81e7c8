"""A full sync as apps run it (search3 with an empty query, paged by songOffset): every song once, in id
order, each page after the first found by the id that ended the previous one (no OFFSET scan), and a
library that changes during the sync neither skips nor repeats a song."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.library.models import Track
from tests.factories import AudioFileFactory, LibraryFactory, TrackFactory
from tests.subsonic.conftest import PASSWORD, grant
from tests.subsonic.schemas import check

pytestmark = pytest.mark.django_db


def page(offset: int, count: int = 3) -> list[str]:
    params = {"u": "listener", "p": PASSWORD, "c": "t", "f": "json", "query": "", "artistCount": 0,
              "albumCount": 0, "songCount": count, "songOffset": offset}  # fmt: skip
    answer = check(json.loads(Client().get("/rest/search3", params).content))
    return [song["id"] for song in answer["searchResult3"].get("song", [])]


def track_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if 'FROM "library_track"' in q["sql"]]


def test_a_full_sync_pages_by_the_last_id_and_survives_changes(listener):
    library = LibraryFactory()
    grant(listener, library)
    tracks = [TrackFactory(library=library, title=f"Song {n}") for n in range(8)]
    for track in tracks:
        AudioFileFactory(track=track, library=library)
    ids = [f"tr-{t.pk}" for t in tracks]

    with CaptureQueriesContext(connection) as first:
        assert page(0) == ids[0:3]
    assert any("OFFSET" not in sql and "LIMIT 3" in sql for sql in track_queries(first))
    with CaptureQueriesContext(connection) as second:
        assert page(3) == ids[3:6]
    [query] = track_queries(second)  # one query for the page, from the last id, without OFFSET
    assert "OFFSET" not in query and f'"library_track"."id" > {tracks[2].pk}' in query

    # A song already synced goes and one comes (a rescan during the sync): the rest once each, the new one
    # at the end (higher id). By OFFSET 6 the page would start at Song 7: Song 6 skipped by the shift.
    tracks[1].delete()
    added = TrackFactory(library=library, title="Late")
    AudioFileFactory(track=added, library=library)
    assert page(6) == [ids[6], ids[7], f"tr-{added.pk}"]

    # An offset no page ended at (an app jumping ahead): by offset (Song 1 is gone), on the ids first.
    assert page(2, count=2) == ids[3:5]
    assert page(50) == []
    assert Track.objects.count() == 8  # 8 made, one deleted, one added
