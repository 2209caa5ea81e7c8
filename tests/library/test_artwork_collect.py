"""Covers nothing references any more are deleted after the grace period, with their original and variants,
on real files; a scan about to reference the same cover wins whichever way the two interleave."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from mutagen.id3 import ID3

from apps.library.artwork import storage as storage_module
from apps.library.artwork.storage import ArtworkStorage, StoredImage, variant_names
from apps.library.models import Album, Artwork, ArtworkStatus
from apps.library.services.artwork import album_cover_upload, artwork_variants_build, artworks_upsert, picture_rules
from apps.library.services.artwork_collect import artworks_collect
from apps.library.tasks import artwork_collect_task
from tests.artwork import embed, image_bytes
from tests.audio import make_audio, touch_later
from tests.factories import LibraryFactory
from tests.pipeline import scan

pytestmark = pytest.mark.django_db

RED, GREEN, BLUE, YELLOW = (200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 20)
DAY_S = 86400


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def picture_replace(path: Path, data: bytes) -> None:
    tags = ID3(path)
    tags.delall("APIC")
    tags.save(path)
    embed(path, data)
    touch_later(path)


def variants_build_all() -> None:
    for artwork_id in Artwork.objects.values_list("id", flat=True):
        assert artwork_variants_build(artwork_id=artwork_id) == ArtworkStatus.READY


def on_disk(content_hash: str) -> tuple[bool, bool]:
    storage = ArtworkStorage.from_settings()
    return storage.original(content_hash).is_file(), storage.folder(content_hash).is_dir()


def age(content_hash: str, *, days: float) -> None:
    """As if the cover had been found unreferenced `days` ago and no scan had met it since."""
    past = timezone.now() - timedelta(days=days)
    Artwork.objects.filter(hash=content_hash).update(unreferenced_since=past)
    os.utime(ArtworkStorage.from_settings().original(content_hash), (past.timestamp(), past.timestamp()))
    # What this process remembers of its own touches (600 s at most) would be long expired by then.
    storage_module._touched.clear()


def replaced_cover(media: Path) -> Path:
    """Album A whose file's picture went from red to green: red is referenced by nothing."""
    path = make_audio(media / "A" / "01.mp3", seconds=1.0, tags={"title": "a1", "album": "A", "track": "1"})
    embed(path, image_bytes(RED))
    library = LibraryFactory(root=media)
    scan(library)
    variants_build_all()
    picture_replace(path, image_bytes(GREEN))
    scan(library)
    variants_build_all()
    return path


def store_as_a_reader(data: bytes) -> StoredImage:
    rules = picture_rules()
    return ArtworkStorage.from_settings().store(data, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)


def test_unreferenced_covers_go_after_the_grace_period_with_their_files(media):
    replaced_cover(media)
    red, green = sha(image_bytes(RED)), sha(image_bytes(GREEN))
    # An uploaded cover in use is referenced by its album only; a folder's other album keeps its own.
    other_root = media.parent / "other"
    other = make_audio(other_root / "U" / "01.mp3", seconds=1.0, tags={"title": "u1", "album": "U", "track": "1"})
    embed(other, image_bytes(BLUE))
    scan(LibraryFactory(root=other_root))
    album_cover_upload(album=Album.objects.get(title="U"), data=image_bytes(YELLOW))
    variants_build_all()
    assert Artwork.objects.count() == 4

    first = artworks_collect()  # red is found unreferenced: its grace period starts
    assert (first.marked, first.deleted) == (1, 0)
    assert Artwork.objects.get(hash=red).unreferenced_since is not None
    assert on_disk(red) == (True, True)

    age(red, days=0.5)  # within the default day of grace
    assert artworks_collect().deleted == 0
    assert on_disk(red) == (True, True)

    age(red, days=2)
    result = artworks_collect()

    assert (result.deleted, result.files_deleted, result.kept) == (1, 1, 0)
    assert not Artwork.objects.filter(hash=red).exists()
    assert on_disk(red) == (False, False)
    for kept in (green, sha(image_bytes(BLUE)), sha(image_bytes(YELLOW))):
        assert Artwork.objects.get(hash=kept).unreferenced_since is None
        assert on_disk(kept) == (True, True)
    assert sorted(os.listdir(ArtworkStorage.from_settings().folder(green))) == sorted(variant_names())
    # Nothing left aside.
    assert not [p for p in Path(settings.ARTWORK_ROOT).rglob("*") if p.name.startswith((".gc-", "gc-"))]


def test_a_cover_referenced_again_within_the_grace_period_keeps_its_row(media):
    path = replaced_cover(media)
    red = Artwork.objects.get(hash=sha(image_bytes(RED)))
    assert artworks_collect().marked == 1

    picture_replace(path, image_bytes(RED))  # put back
    scan(Album.objects.get(title="A").library)
    result = artworks_collect()

    assert (result.unmarked, result.deleted) == (1, 0)
    again = Artwork.objects.get(hash=red.hash)
    assert (again.pk, again.status, again.unreferenced_since) == (red.pk, ArtworkStatus.READY, None)
    assert Album.objects.get(title="A").artwork_id == red.pk
    assert on_disk(red.hash) == (True, True)


def test_a_scan_that_met_the_cover_before_the_collection_keeps_its_files(media):
    replaced_cover(media)
    red_bytes = image_bytes(RED)
    red = sha(red_bytes)
    artworks_collect()
    age(red, days=2)

    stored = store_as_a_reader(red_bytes)  # a scan's reader finds the original: it refreshes its mtime
    result = artworks_collect()  # the collection runs between the reader and the writer
    with transaction.atomic():  # the writer
        artwork_id = artworks_upsert(images=[stored], source="embedded")[red]
        Album.objects.filter(title="A").update(artwork_id=artwork_id)

    assert (result.deleted, result.files_deleted, result.kept) == (1, 0, 1)
    assert ArtworkStorage.from_settings().original(red).read_bytes() == red_bytes
    assert artwork_variants_build(artwork_id=artwork_id) == ArtworkStatus.READY
    assert on_disk(red) == (True, True)
    assert Album.objects.get(title="A").artwork.hash == red


def test_a_scan_that_meets_the_cover_after_the_collection_stores_it_again(media):
    replaced_cover(media)
    red_bytes = image_bytes(RED)
    red = sha(red_bytes)
    artworks_collect()
    age(red, days=2)

    result = artworks_collect()
    assert (result.deleted, result.files_deleted) == (1, 1)
    assert on_disk(red) == (False, False)
    stored = store_as_a_reader(red_bytes)  # the reader finds nothing: it writes the bytes again
    with transaction.atomic():
        artwork_id = artworks_upsert(images=[stored], source="embedded")[red]
        Album.objects.filter(title="A").update(artwork_id=artwork_id)

    assert ArtworkStorage.from_settings().original(red).read_bytes() == red_bytes
    assert artwork_variants_build(artwork_id=artwork_id) == ArtworkStatus.READY
    assert on_disk(red) == (True, True)


@pytest.mark.django_db(transaction=True)
def test_a_cover_locked_by_a_scans_upsert_is_skipped_not_deleted(media):
    replaced_cover(media)
    red_bytes = image_bytes(RED)
    red = sha(red_bytes)
    artworks_collect()
    age(red, days=2)
    stored = store_as_a_reader(red_bytes)
    upserted, collected = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def writer() -> None:
        try:
            with transaction.atomic():
                artwork_id = artworks_upsert(images=[stored], source="embedded")[red]  # row locked from here
                upserted.set()
                outcome["waited"] = collected.wait(30)
                Album.objects.filter(title="A").update(artwork_id=artwork_id)
            outcome["artwork_id"] = artwork_id
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert upserted.wait(30)
    started = time.monotonic()
    result = artworks_collect()  # skips the locked row instead of waiting for it
    elapsed_s = time.monotonic() - started
    collected.set()
    thread.join(30)

    assert outcome["waited"] is True, f"the collection waited for the writer ({elapsed_s:.1f} s)"
    assert result.deleted == 0
    album = Album.objects.select_related("artwork").get(title="A")
    assert (album.artwork_id, album.artwork.hash) == (outcome["artwork_id"], red)
    assert on_disk(red) == (True, True)
    assert artworks_collect().unmarked == 1
    assert Artwork.objects.get(hash=red).unreferenced_since is None


def test_the_beat_task_collects(media, settings):
    assert settings.CELERY_BEAT_SCHEDULE["artwork-collect"]["task"] == "apps.library.tasks.artwork_collect_task"
    replaced_cover(media)
    red = sha(image_bytes(RED))
    artworks_collect()
    age(red, days=2)

    assert artwork_collect_task() == {"marked": 0, "deleted": 1, "files_deleted": 1}
    assert on_disk(red) == (False, False)
