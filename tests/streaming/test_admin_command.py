from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.streaming import services
from apps.streaming.models import Rendition
from apps.streaming.services import rendition_transcode
from tests.audio import make_audio
from tests.conftest import broker_queue_messages
from tests.factories import UserFactory
from tests.pipeline import music_track

pytestmark = pytest.mark.django_db


def test_transcode_command_with_progress_and_summary(media: Path, capsys):
    track = music_track(media, seconds=6)
    make_audio(media / "second.mp3", seconds=4, tags={"title": "second"})
    call_command("scan", "--no-progress")
    call_command("transcode", "--missing")
    out, err = capsys.readouterr()
    assert "2 tracks: 2 published" in out
    assert "transcoding" in err and "audio s" in err  # the tqdm bar
    assert Rendition.objects.filter(status="ready").count() == 6
    call_command("transcode", "--missing")
    assert "Nothing to transcode." in capsys.readouterr()[0]
    call_command("transcode", "--track", str(track.pk), "--no-progress")
    assert "1 tracks: 1 published" in capsys.readouterr()[0]
    with pytest.raises(CommandError, match="No playable track with id 999"):
        call_command("transcode", "--track", "999")
    with pytest.raises(CommandError, match="No library 'nope'"):
        call_command("transcode", "--library", "nope")


def test_admin_lists_renditions_and_retries_failed_ones(client, media: Path, django_capture_on_commit_callbacks):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    track = music_track(media, seconds=3)
    path = media / "song.mp3"
    stat = path.stat()  # same size and mtime as scanned, but no longer audio
    path.write_bytes(b"\xff" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert rendition_transcode(track_id=track.pk).outcome == "failed"
    page = client.get(f"/admin/library/track/{track.pk}/change/")
    assert page.status_code == 200 and page.content.count(b"ffmpeg exited with") == 3
    listing = client.get("/admin/streaming/rendition/?status__exact=failed")
    assert listing.status_code == 200 and b"3 renditions" in listing.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/streaming/rendition/",
            {"action": "retry", "_selected_action": list(Rendition.objects.values_list("pk", flat=True))},
            follow=True,
        )
    assert b"1 track(s) queued for transcoding." in response.content
    assert [m["headers"]["argsrepr"] for m in broker_queue_messages(services.INTERACTIVE_QUEUE)] == [f"[{track.pk}]"]
    assert set(Rendition.objects.values_list("status", "attempts")) == {("pending", 0)}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/library/track/",
            {"action": "transcode_now", "_selected_action": [track.pk]},
            follow=True,
        )
    assert b"1 track(s) queued" in response.content
