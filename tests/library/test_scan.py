"""The scanner against real folders of generated audio and a real PostgreSQL."""

from __future__ import annotations

import os
import shutil

import pytest
from mutagen.id3 import ID3, TIT2

from apps.library.models import Album, AudioFile, Chapter, LibraryKind, Track
from apps.library.services import library_scan
from apps.library.services import scan as scan_module
from tests.audio import make_audio, touch_later
from tests.factories import LibraryFactory
from tests.pipeline import scan

pytestmark = pytest.mark.django_db


def song(root, relative, **tags):
    return make_audio(root / relative, seconds=1, tags=tags)


def test_music_groups_albums_by_title_and_album_artist(media):
    song(media / "A", "01.mp3", title="One", artist="Alice", album="Greatest", album_artist="Alice", track="1")
    song(media / "A", "02.mp3", title="Two", artist="Alice; Bob", album="Greatest", album_artist="Alice", track="2")
    song(media / "B", "01.flac", title="Other", artist="Carol", album="Greatest", album_artist="Carol", genre="Jazz")
    song(media, "loose single.ogg")  # no tags at all
    library = LibraryFactory(root=media)

    result = scan(library)

    assert (result.seen, result.added, result.errors) == (4, 4, 0)
    assert Track.objects.count() == 4 and len(result.changed_track_ids) == 4
    alice = Album.objects.get(title="Greatest", album_artist="Alice")
    assert list(alice.tracks.order_by("track_number").values_list("title", "track_number")) == [("One", 1), ("Two", 2)]
    assert sorted(alice.artists) == ["Alice", "Bob"]
    assert (alice.track_count, alice.duration_ms > 1900) == (2, True)
    assert Album.objects.get(album_artist="Carol").genres == ["Jazz"]
    loose = Track.objects.get(album__isnull=True)
    assert loose.title == "loose single"  # the file name when there is no title
    two = Track.objects.get(title="Two")
    assert two.artists == ["Alice", "Bob"]
    assert two.files.get().codec == "mp3"


def test_podcast_show_is_the_album_and_each_file_an_episode(media):
    song(media / "Tech Talk", "ep1.mp3", title="Episode 1", album="Tech Talk", artist="Host")
    song(media / "Tech Talk", "ep2.mp3", title="Episode 2", album="Tech Talk", artist="Guest")
    song(media / "Untagged Show", "pilot.mp3")
    library = LibraryFactory(root=media, kind=LibraryKind.PODCAST)

    scan(library)

    shows = {album.title: album.track_count for album in Album.objects.all()}
    assert shows == {"Tech Talk": 2, "Untagged Show": 1}
    assert set(Track.objects.values_list("title", flat=True)) == {"Episode 1", "Episode 2", "pilot"}


def test_audiobook_multi_file_book_is_one_track_with_a_continuous_timeline(media):
    book = media / "Author" / "The Long Book"
    # Files named so that name order and tag order disagree: tags win, then natural sort.
    make_audio(book / "CD1" / "part 10.mp3", seconds=1, tags={"title": "Beginning", "disc": "1", "album": "Long"})
    make_audio(book / "CD1" / "part 9.mp3", seconds=2, tags={"title": "Part two", "disc": "1", "album": "Long"})
    make_audio(book / "CD2" / "z.mp3", seconds=1, tags={"title": "Last", "disc": "2", "album": "Long"})
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)

    scan(library)

    track = Track.objects.get()
    assert track.title == "Long"
    assert track.group_key == str(book)
    assert 3900 <= track.duration_ms <= 4300
    chapters = list(track.chapters.values_list("title", "start_ms", "end_ms"))
    assert [title for title, _, _ in chapters] == ["Part two", "Beginning", "Last"]  # natural sort: 9 < 10
    assert chapters[0][1] == 0 and chapters[1][1] == chapters[0][2] and chapters[2][1] == chapters[1][2]
    assert chapters[-1][2] == track.duration_ms
    assert track.files.count() == 3


def test_audiobook_m4b_chapters_and_one_book_per_m4b_and_root_file(media):
    chapters = [("Prologue", 0, 1000), ("Chapter 1", 1000, 2500), ("Epilogue", 2500, 3000)]
    make_audio(media / "Author" / "Book One.m4b", seconds=3, chapters=chapters, tags={"album": "Book One"})
    make_audio(media / "Author" / "Book Two.m4b", seconds=1, tags={"title": "ignored", "album": "Book Two"})
    make_audio(media / "Standalone.mp3", seconds=1)
    make_audio(media / "Series" / "Vol 1" / "a.m4a", seconds=1, tags={"album": "Vol 1"})
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)

    scan(library)

    assert set(Track.objects.values_list("title", flat=True)) == {"Book One", "Book Two", "Standalone", "Vol 1"}
    book_one = Track.objects.get(title="Book One")
    assert list(book_one.chapters.values_list("title", "start_ms", "end_ms")) == [
        ("Prologue", 0, 1000),
        ("Chapter 1", 1000, 2500),
        ("Epilogue", 2500, book_one.duration_ms),
    ]
    # A single file without embedded chapters: one chapter, the whole book.
    assert list(Track.objects.get(title="Standalone").chapters.values_list("start_ms", flat=True)) == [0]


def test_rescans_see_added_changed_deleted_and_restored_files(media, tmp_path):
    first = song(media, "first.mp3", title="First")
    second = song(media, "second.mp3", title="Second")
    library = LibraryFactory(root=media)
    scan(library)
    before = {t.title: t.source_fingerprint for t in Track.objects.all()}

    unchanged = scan(library)
    assert (unchanged.seen, unchanged.unchanged, unchanged.added, unchanged.updated) == (2, 2, 0, 0)
    assert unchanged.changed_track_ids == []

    tags = ID3(second)
    tags.add(TIT2(encoding=3, text=["Second, retitled"]))
    tags.save(second)
    touch_later(second)
    song(media, "third.mp3", title="Third")
    changed = scan(library)
    assert (changed.added, changed.updated, changed.unchanged) == (1, 1, 1)
    retitled = Track.objects.get(title="Second, retitled")
    assert retitled.source_fingerprint != before["Second"]
    assert sorted(changed.changed_track_ids) == sorted([retitled.id, Track.objects.get(title="Third").id])

    kept = tmp_path / "kept.mp3"
    shutil.move(first, kept)
    deleted = scan(library)
    assert deleted.missing == 1
    gone = Track.objects.get(title="First")
    assert gone.missing and AudioFile.objects.get(track=gone).missing
    assert set(Track.objects.listed().values_list("title", flat=True)) == {"Second, retitled", "Third"}

    shutil.move(kept, first)  # same size and mtime: the very same file is back
    restored = scan(library)
    assert (restored.restored, restored.missing, restored.updated) == (1, 0, 0)
    back = Track.objects.get(pk=gone.pk)  # the same row (progress and history attach to it)
    assert not back.missing and back.source_fingerprint == before["First"]
    assert restored.changed_track_ids == []  # unchanged sources: nothing to transcode again


def test_bad_files_are_kept_with_their_error_and_the_scan_goes_on(media):
    song(media, "good.mp3", title="Good")
    (media / "empty.mp3").write_bytes(b"")
    (media / "notes.mp3").write_text("not music " * 100)
    corrupt = media / "corrupt.flac"
    corrupt.write_bytes(make_audio(media / "tmp.flac").read_bytes()[:100])
    (media / "tmp.flac").unlink()
    (media / "cover.jpg").write_bytes(b"\xff\xd8 not audio, not scanned")
    library = LibraryFactory(root=media)

    result = scan(library)

    assert (result.seen, result.added, result.errors) == (4, 4, 3)
    errors = dict(AudioFile.objects.exclude(error="").values_list("path", "error"))
    assert set(errors) == {"empty.mp3", "notes.mp3", "corrupt.flac"}
    assert errors["empty.mp3"] == "empty file (0 bytes)"
    assert all(any(path in message for message in result.error_messages) for path in errors)
    assert list(Track.objects.values_list("title", flat=True)) == ["Good"]
    # Still counted on the next scan, without reading them again.
    again = scan(library)
    assert (again.errors, again.unchanged) == (3, 4)


def test_awkward_names_deep_folders_and_big_folders(media):
    song(media / "Ünïcödé ünd spaces" / "日本語", "Ça va — 1.mp3", title="Unicode")
    deep = media.joinpath(*[f"level {n}" for n in range(20)])
    song(deep, "deep.mp3", title="Deep")
    template = song(media / "big", "0000.mp3")
    for n in range(1, 1000):
        shutil.copyfile(template, media / "big" / f"{n:04}.mp3")
    library = LibraryFactory(root=media)

    result = scan(library)

    assert (result.seen, result.added, result.errors) == (1002, 1002, 0)
    assert Track.objects.count() == 1002
    assert Track.objects.get(title="Unicode").files.get().path == "Ünïcödé ünd spaces/日本語/Ça va — 1.mp3"
    assert Track.objects.get(title="Deep").files.get().path.count("/") == 20


def test_symlinks_outside_the_root_are_not_followed(media, tmp_path):
    outside = tmp_path / "outside"
    song(outside, "secret.mp3", title="Secret")
    song(media / "real", "inside.mp3", title="Inside")
    os.symlink(outside, media / "escape")
    os.symlink(outside / "secret.mp3", media / "escape.mp3")
    os.symlink(media / "real", media / "alias")  # inside: followed, but the folder is read once
    os.symlink(media, media / "real" / "loop")
    library = LibraryFactory(root=media)

    result = scan(library)

    assert list(Track.objects.values_list("title", flat=True)) == ["Inside"]
    assert result.seen == 1


def test_a_file_deleted_during_the_scan_is_simply_not_there(media):
    song(media, "stays.mp3", title="Stays")
    doomed = song(media, "doomed.mp3", title="Doomed")
    library = LibraryFactory(root=media)

    def delete_after_walk(phase, done, total):
        if phase == "walk" and total and doomed.exists():
            doomed.unlink()

    result = library_scan(library=library, progress=delete_after_walk)

    assert result.errors == 0
    assert list(Track.objects.values_list("title", flat=True)) == ["Stays"]


def test_a_scan_that_died_before_building_tracks_is_completed_by_the_next(media, monkeypatch):
    song(media, "one.mp3", title="One")
    library = LibraryFactory(root=media)

    def crash(**kwargs):
        raise RuntimeError("worker killed")

    monkeypatch.setattr(scan_module, "tracks_sync", crash)
    with pytest.raises(RuntimeError):
        scan(library)
    assert AudioFile.objects.count() == 1 and Track.objects.count() == 0
    monkeypatch.undo()

    result = scan(library)

    assert result.unchanged == 1  # the file itself was stored...
    assert list(Track.objects.values_list("title", flat=True)) == ["One"]  # ...and its track is built now
    assert len(result.changed_track_ids) == 1


def test_file_moving_between_books_regroups_both(media):
    make_audio(media / "Book A" / "1.mp3", seconds=1)
    make_audio(media / "Book A" / "2.mp3", seconds=1)
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)
    scan(library)
    assert Chapter.objects.count() == 2

    (media / "Book B").mkdir()
    shutil.move(media / "Book A" / "2.mp3", media / "Book B" / "2.mp3")
    scan(library)

    assert dict(Track.objects.values_list("title", "missing")) == {"Book A": False, "Book B": False}
    assert Track.objects.get(title="Book A").chapters.count() == 1


# --- Odd files never stop a scan (each of these once failed every scan of its library) -----------------


def test_tags_and_names_that_do_not_fit_the_columns_are_cut_or_skipped_not_fatal(tmp_path):
    media = tmp_path / ("r" * 60)
    song(media, "long genre.mp3", title="Long genre", genre="G" * 300 + "; Jazz")
    song(media, "1²2.mp3", title="Superscript")  # "²".isdigit() but int("²") fails
    deep = media
    for level in range(8):  # 2 000 characters under the root, more than 2 048 with it
        deep = deep / (f"{level}" + "d" * 248)
    song(deep, "deep.mp3", title="Too deep")
    library = LibraryFactory(root=media)

    result = scan(library)

    assert sorted(Track.objects.values_list("title", flat=True)) == ["Long genre", "Superscript"]
    assert Track.objects.get(title="Long genre").genres == ["G" * 200, "Jazz"]
    assert result.errors == 1 and "longer than 2048 characters with its library folder" in result.error_messages[0]


def test_a_nul_in_a_chapter_title_is_dropped_like_in_tags(media):
    book = make_audio(media / "book.m4b", seconds=2, chapters=[("AQZQA", 0, 1000), ("Second", 1000, 2000)])
    book.write_bytes(book.read_bytes().replace(b"AQZQA", b"A\x00ZQA"))
    make_audio(media / "other.m4b", seconds=1, tags={"album": "Fine"})
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)

    result = scan(library)

    assert result.errors == 0 and Track.objects.count() == 2
    titles = Chapter.objects.filter(track__files__path="book.m4b").order_by("index").values_list("title", flat=True)
    assert list(titles) == ["AZQA", "Second"]


def test_a_book_in_disc_folders_without_disc_tags_plays_disc_by_disc(media):
    for disc in (1, 2):
        for number in (1, 2):
            song(media / "Book" / f"CD{disc}", f"{number:02}.mp3", title=f"d{disc}t{number}", track=str(number))
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)

    scan(library)

    book = Track.objects.get()
    assert list(book.chapters.order_by("index").values_list("title", flat=True)) == ["d1t1", "d1t2", "d2t1", "d2t2"]


def test_tracks_orphaned_by_a_regrouping_leave_their_album_counts(media):
    song(media / "S", "b1.m4b", album="Book One", grouping="Saga")
    song(media / "S", "b2.m4b", album="Book Two", grouping="Saga")
    library = LibraryFactory(root=media, kind=LibraryKind.AUDIOBOOK)
    scan(library)
    saga = Album.objects.get(title="Saga")
    assert saga.track_count == 2

    # An mp3 in the folder makes the folder one book of three files, in another series.
    song(media / "S", "a.mp3", album="Omnibus", grouping="Other")
    scan(library)

    saga.refresh_from_db()
    assert Track.objects.filter(album=saga, missing=False).count() == 0
    assert (saga.track_count, saga.duration_ms) == (0, 0)
