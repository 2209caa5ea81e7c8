"""factory_boy factories: rows only, no files on disk and no scan or transcode (for those, the real pipeline:
tests/pipeline.py). A row built here is what a test states about the world, so only what the database needs
is filled in; a test names the fields its assertions depend on."""

from __future__ import annotations

from pathlib import Path

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.library.models import AudioFile, Library, LibraryAccess, LibraryKind, Track
from apps.streaming.models import Rendition, RenditionStatus


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"listener{n}")
    password = factory.django.Password("correct horse battery staple")
    is_staff = False


class LibraryFactory(factory.django.DjangoModelFactory):
    """`LibraryFactory(root=folder)` for a library of one folder; without it, a folder that does not exist
    (enough for a test that never scans)."""

    class Meta:
        model = Library

    class Params:
        root = factory.Sequence(lambda n: Path(f"/nonexistent/revenge-tests/library{n}"))

    kind = LibraryKind.MUSIC
    name = factory.LazyAttribute(lambda o: f"{o.kind} {Path(o.root).name}")
    root_paths = factory.LazyAttribute(lambda o: [str(o.root)])


class LibraryAccessFactory(factory.django.DjangoModelFactory):
    """A grant: `LibraryAccessFactory(user=user, library=library)` lets the user see the library."""

    class Meta:
        model = LibraryAccess

    user = factory.SubFactory(UserFactory)
    library = factory.SubFactory(LibraryFactory)


class TrackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Track

    library = factory.SubFactory(LibraryFactory)
    title = factory.Sequence(lambda n: f"Track {n}")
    group_key = factory.LazyAttribute(lambda o: f"{o.title}.mp3")
    artists = factory.LazyAttribute(lambda o: [f"{o.title} artist"])
    duration_ms = 200_000
    source_fingerprint = factory.Sequence(lambda n: f"fp{n}")


class AudioFileFactory(factory.django.DjangoModelFactory):
    """The file row of a track (the track's library and group); the file itself is not written."""

    class Meta:
        model = AudioFile

    track = factory.SubFactory(TrackFactory)
    library = factory.LazyAttribute(lambda o: o.track.library if o.track else LibraryFactory())
    root = factory.LazyAttribute(lambda o: o.library.root_paths[0])
    path = factory.LazyAttribute(lambda o: o.track.group_key if o.track else "file.mp3")
    group_key = factory.LazyAttribute(lambda o: o.path)
    size_bytes = 100_000
    mtime_ns = 1_700_000_000_000_000_000
    format = "mp3"
    codec = "mp3"
    duration_ms = factory.LazyAttribute(lambda o: o.track.duration_ms if o.track else 200_000)
    scanned_at = factory.LazyFunction(timezone.now)


class RenditionFactory(factory.django.DjangoModelFactory):
    """A rendition row as the transcoder leaves it (`ready` by default); its folder is not written."""

    class Meta:
        model = Rendition

    track = factory.SubFactory(TrackFactory)
    profile = "aac-128"
    rendition_key = factory.Sequence(lambda n: f"{n:016x}")
    status = RenditionStatus.READY
    segment_format = "fmp4"
    codecs = "mp4a.40.2"
