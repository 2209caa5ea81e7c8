"""A CBR MP3 cut short: the scanner takes the duration from the bytes present and flags the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.urls import reverse

from apps.library.models import AudioFile
from apps.library.scanner.metadata import read_metadata
from tests.audio import make_audio
from tests.factories import LibraryFactory, UserFactory
from tests.pipeline import scan

pytestmark = pytest.mark.django_db

CUT_BYTES = 3000  # of a 64 kbit/s stream: 375 ms at most, less the tag and the Info frame


def cut(path: Path, size_bytes: int = CUT_BYTES) -> Path:
    """What a failed copy or download leaves: the start of the file, its header still claiming all of it."""
    path.write_bytes(path.read_bytes()[:size_bytes])
    return path


def test_a_cbr_mp3_cut_short_gets_the_duration_of_what_is_there(tmp_path: Path):
    whole = make_audio(tmp_path / "whole.mp3", seconds=20, tags={"title": "whole"})
    metadata = read_metadata(str(whole), whole.stat().st_size)
    assert not metadata.truncated
    assert abs(metadata.duration_ms - 20_000) < 100
    part = cut(make_audio(tmp_path / "part.mp3", seconds=20, tags={"title": "part"}))
    metadata = read_metadata(str(part), CUT_BYTES)
    assert metadata.truncated
    assert 300 <= metadata.duration_ms <= 375


def test_scan_flags_the_cut_file_and_the_admin_lists_it(media: Path, client):
    make_audio(media / "whole.mp3", seconds=20, tags={"title": "whole"})
    cut(make_audio(media / "part.mp3", seconds=20, tags={"title": "part"}))
    library = LibraryFactory(root=media)
    scan(library)
    part = AudioFile.objects.select_related("track").get(path="part.mp3")
    whole = AudioFile.objects.select_related("track").get(path="whole.mp3")
    assert (part.truncated, whole.truncated) == (True, False)
    assert 300 <= part.duration_ms <= 375
    assert part.track.duration_ms == part.duration_ms
    assert abs(whole.track.duration_ms - 20_000) < 100

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:library_audiofile_changelist")
    response = client.get(url, {"truncated__exact": "1"})
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert "truncated" in [spec.title for spec in changelist.filter_specs]  # offered in the sidebar
    assert "truncated" in changelist.list_display  # and shown as a column
    assert [f.path for f in changelist.result_list] == ["part.mp3"]
    response = client.get(url, {"truncated__exact": "0"})
    assert [f.path for f in response.context["cl"].result_list] == ["whole.mp3"]
