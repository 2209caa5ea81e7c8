"""The factories build rows the database accepts, consistent with each other (a file in its track's library
and group, a grant that makes a library visible, a rendition under its track's folder)."""

from __future__ import annotations

import pytest

from apps.library.models import AudioFile, Library, LibraryKind, Track
from apps.streaming.models import Rendition, RenditionStatus
from tests.factories import AudioFileFactory, LibraryAccessFactory, LibraryFactory, RenditionFactory, TrackFactory

pytestmark = pytest.mark.django_db


def test_library_of_a_folder_is_named_after_its_kind_and_folder(tmp_path):
    library = LibraryFactory(root=tmp_path / "shelf", kind=LibraryKind.AUDIOBOOK)
    assert (library.name, library.kind, library.root_paths) == (
        "audiobook shelf",
        "audiobook",
        [str(tmp_path / "shelf")],
    )
    assert LibraryFactory().root_paths != LibraryFactory().root_paths


def test_grant_makes_the_library_visible_to_its_user(user):
    granted, _other = LibraryFactory(), LibraryFactory()
    track = TrackFactory(library=granted)
    TrackFactory(library=_other)
    LibraryAccessFactory(user=user, library=granted)
    assert list(Track.objects.visible_to(user)) == [track]


def test_audio_file_belongs_to_its_tracks_library_and_group():
    audio_file = AudioFileFactory(track=TrackFactory(title="Dawn", duration_ms=5_000))
    assert AudioFile.objects.get() == audio_file
    assert audio_file.library_id == audio_file.track.library_id
    assert (audio_file.path, audio_file.group_key, audio_file.duration_ms) == ("Dawn.mp3", "Dawn.mp3", 5_000)
    assert audio_file.root == Library.objects.get().root_paths[0]


def test_rendition_is_ready_under_its_tracks_folder():
    first, second = RenditionFactory(), RenditionFactory(status=RenditionStatus.PENDING)
    assert Rendition.objects.filter(status=RenditionStatus.READY).get() == first
    assert first.folder_name == f"{first.track_id}/{first.rendition_key}/aac-128"
    assert first.rendition_key != second.rendition_key
