from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import m3u8
import pytest
from celery import Celery, current_app
from django.conf import settings
from rest_framework.test import APIClient

from apps.streaming import services
from apps.streaming.models import Rendition
from apps.streaming.signing import hls_signature
from apps.streaming.storage import RenditionStorage
from tests.conftest import broker_queue_messages, free_port
from tests.factories import LibraryAccessFactory
from tests.pipeline import book_track, music_track, ready
from tests.streaming.hls_checks import decoded_seconds

pytestmark = pytest.mark.django_db


@pytest.fixture
def listener(api_client, user):
    api_client.force_authenticate(user)
    return api_client


def test_decision_direct_when_the_client_plays_the_source(listener, user, media: Path):
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    body = listener.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "mp3,aac", "max_bitrate": 320}).json()
    assert body["mode"] == "direct" and body["ready"] is True
    assert body["url"].startswith(f"/api/v1/tracks/{track.pk}/file?token=")
    assert "mp3" in body["reason"]


def test_decision_hls_when_the_codec_is_not_played_queues_interactive(
    listener, user, media: Path, django_capture_on_commit_callbacks
):
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    with django_capture_on_commit_callbacks(execute=True):
        response = listener.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "aac,opus"})
    body = response.json()
    assert body["mode"] == "hls" and body["ready"] is False and body["variants"] == []
    assert "does not play mp3" in body["reason"]
    assert body["url"].startswith(f"/api/v1/tracks/{track.pk}/master.m3u8?token=")
    assert response["Cache-Control"] == "private, no-store"
    messages = broker_queue_messages(services.INTERACTIVE_QUEUE)
    assert [m["headers"]["argsrepr"] for m in messages] == [f"[{track.pk}]"]
    ready(track)
    body = listener.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "aac", "max_bitrate": 150}).json()
    assert body["ready"] is True
    assert [v["profile"] for v in body["variants"]] == ["aac-64", "aac-128"]
    assert all(v["codecs"] == "mp4a.40.2" and v["bandwidth"] >= v["average_bandwidth"] for v in body["variants"])


def test_decision_for_a_book_is_hls_with_its_files(listener, user, media: Path):
    track = book_track(media, parts=2, seconds=2)
    LibraryAccessFactory(user=user, library=track.library)
    body = listener.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "mp3"}).json()
    assert body["mode"] == "hls" and "2 files" in body["reason"]
    assert [f["index"] for f in body["files"]] == [0, 1]


@pytest.mark.parametrize(
    "params, field",
    [({"codecs": "mp3,wma"}, "codecs"), ({"max_bitrate": "fast"}, "max_bitrate"), ({"max_bitrate": 1}, "max_bitrate")],
)
def test_decision_bad_input(listener, user, media: Path, params, field):
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    response = listener.get(f"/api/v1/tracks/{track.pk}/stream", params)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]
    assert not Rendition.objects.exists()


def test_everything_is_404_without_a_grant(listener, media: Path):
    track = music_track(media)
    ready(track)
    for url in ("stream", "master.m3u8", "file", "files/0", "download"):
        response = listener.get(f"/api/v1/tracks/{track.pk}/{url}")
        assert response.status_code == 404, url
    assert listener.get("/api/v1/tracks/999999/stream").status_code == 404


def test_anonymous_needs_a_token_and_a_token_is_per_track_and_user(listener, user, media: Path):
    api_client = APIClient()
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    assert api_client.get(f"/api/v1/tracks/{track.pk}/file").status_code == 401
    url = listener.get(f"/api/v1/tracks/{track.pk}/stream").json()["url"]
    token = parse_qs(urlsplit(url).query)["token"][0]
    assert api_client.get(url).status_code == 200
    assert api_client.get(f"/api/v1/tracks/{track.pk}/file?token={token}x").status_code == 404
    other = music_track(media.parent / "other", "other.mp3")
    LibraryAccessFactory(user=user, library=other.library)
    assert api_client.get(f"/api/v1/tracks/{other.pk}/file?token={token}").status_code == 404
    # Access is checked on every use: a revoked grant ends the token's use.
    user.library_accesses.all().delete()
    assert api_client.get(url).status_code == 404


def test_master_not_ready_is_202_with_retry_after(listener, user, media: Path, django_capture_on_commit_callbacks):
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    with django_capture_on_commit_callbacks(execute=True):
        response = listener.get(f"/api/v1/tracks/{track.pk}/master.m3u8")
    assert response.status_code == 202 and response["Retry-After"] == "5"
    assert {r["status"] for r in response.json()["renditions"]} == {"pending"}
    assert len(broker_queue_messages(services.INTERACTIVE_QUEUE)) == 1


def test_master_playlist_lists_ready_profiles_with_signed_uris(listener, user, media: Path):
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    rows = {r.profile: r for r in ready(track)}
    response = listener.get(f"/api/v1/tracks/{track.pk}/master.m3u8")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apple.mpegurl"
    assert response["Cache-Control"] == "private, max-age=60"
    master = m3u8.loads(response.content.decode())
    assert master.is_variant and master.is_independent_segments
    assert [p.stream_info.bandwidth for p in master.playlists] == sorted(r.peak_bitrate_bps for r in rows.values())
    for variant in master.playlists:
        match = re.fullmatch(rf"/hls/(\d+)/([\w-]{{22}})/{track.pk}/(\w{{16}})/(aac-\d+)/index\.m3u8", variant.uri)
        assert match, variant.uri
        expires, signature, key, profile = match.groups()
        assert signature == hls_signature(expires=int(expires), track_id=track.pk, rendition_key=key)
        assert int(expires) >= time.time() + settings.HLS_URL_LIFETIME_S
        assert variant.stream_info.average_bandwidth == rows[profile].average_bitrate_bps
        assert variant.stream_info.codecs == "mp4a.40.2"


def test_deleted_rendition_folder_is_requeued(listener, user, media: Path, django_capture_on_commit_callbacks):
    api_client = APIClient()
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    row = ready(track)[0]
    prefix = RenditionStorage.url_prefix(track_id=track.pk, rendition_key=row.rendition_key)
    shutil.rmtree(settings.RENDITIONS_ROOT / str(track.pk))
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.get(f"{prefix}/aac-64/index.m3u8")
    assert response.status_code == 404
    assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"pending"}
    assert len(broker_queue_messages(services.INTERACTIVE_QUEUE)) == 1
    assert listener.get(f"/api/v1/tracks/{track.pk}/master.m3u8").status_code == 202


def _flip(signature: str, index: int) -> str:
    """Another signature: character `index` replaced by one that changes the decoded bits (for the last
    character only its top 2 bits count, so step by 16 in the base64 alphabet)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    step = 16 if index == len(signature) - 1 else 1
    replacement = alphabet[(alphabet.index(signature[index]) + step) % 64]
    return signature[:index] + replacement + signature[index + 1 :]


def _signed(expires: str, track: str, key: str) -> str:
    """A signature over the digits as spelled, as nginx's secure_link_md5 computes it."""
    material = f"{expires}/{track}/{key} {settings.HLS_SIGNING_SECRET}".encode()
    return base64.urlsafe_b64encode(hashlib.md5(material, usedforsecurity=False).digest()).decode().rstrip("=")


def _hls_table(track_id: int, key: str, other_track_id: int) -> list[tuple[str, int]]:
    now = int(time.time())
    good = RenditionStorage.url_prefix(track_id=track_id, rendition_key=key)
    expires, signature = good.split("/")[2:4]
    expired = RenditionStorage.url_prefix(track_id=track_id, rendition_key=key, expires=now - 10)
    return [
        (f"{good}/aac-64/index.m3u8", 200),
        (f"{good}/aac-64/init.mp4", 200),
        (f"{good}/aac-64/seg00000.m4s", 200),
        (f"{good}/aac-64/seg00099.m4s", 404),
        (f"{good}/aac-999/index.m3u8", 404),
        (f"/hls/{expires}/{_flip(signature, 5)}/{track_id}/{key}/aac-64/index.m3u8", 403),
        (f"/hls/{expires}/{_flip(signature, 21)}/{track_id}/{key}/aac-64/index.m3u8", 403),
        (f"/hls/{expires}/{signature[:10]}/{track_id}/{key}/aac-64/index.m3u8", 403),
        (f"/hls/{int(expires) + 60}/{signature}/{track_id}/{key}/aac-64/index.m3u8", 403),
        (f"{expired}/aac-64/index.m3u8", 410),
        (f"/hls/{expires}/{signature}/{other_track_id}/{key}/aac-64/index.m3u8", 403),
        (f"{good}/aac-64/../../../../../../etc/passwd", 404),
        (f"{good}/aac-64/%2e%2e/%2e%2e/index.m3u8", 404),
        (f"{good}//aac-64//index.m3u8", 200),
        (f"/hls/{expires}/{signature}/{track_id}/{key}/aac-64/..%2F..%2Fsecret", 404),
        (f"{good}/aac-64/index.m3u8%00", 400),
        ("/hls/../../../../etc/passwd", 400),
        # nginx signs the digits as spelled: a zero in front is another expiry or track (issue 13, 6).
        (f"/hls/0{expires}/{signature}/{track_id}/{key}/aac-64/index.m3u8", 403),
        (f"/hls/{expires}/{signature}/0{track_id}/{key}/aac-64/index.m3u8", 403),
        (f"/hls/00{expires}/{signature}/00{track_id}/{key}/aac-64/index.m3u8", 403),
        # Signed as spelled (only with the secret): nginx serves RENDITIONS_ROOT/<track as spelled>/...
        (f"/hls/0{expires}/{_signed('0' + expires, str(track_id), key)}/{track_id}/{key}/aac-64/index.m3u8", 200),
        (f"/hls/{expires}/{_signed(expires, f'0{track_id}', key)}/0{track_id}/{key}/aac-64/index.m3u8", 404),
    ]


def test_hls_signed_urls_table(api_client, media: Path):
    track = music_track(media)
    other = music_track(media.parent / "other", "other.mp3")
    key = ready(track)[0].rendition_key
    for url, status in _hls_table(track.pk, key, other.pk):
        response = api_client.generic("GET", url)
        assert response.status_code == status, (url, response.status_code)
        # A zero-padded track is not the folder of the track: nothing was marked lost.
        assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"ready"}, url
        if status == 200:
            assert response["Cache-Control"] == "public, max-age=31536000, immutable"
            suffix = url.rsplit(".", 1)[1]
            expected = {"m3u8": "application/vnd.apple.mpegurl", "mp4": "audio/mp4", "m4s": "audio/mp4"}[suffix]
            assert response["Content-Type"] == expected


def test_hls_mpegts_content_type(api_client, media: Path, settings):
    settings.HLS_SEGMENT_FORMAT = "mpegts"
    track = music_track(media, seconds=3)
    key = ready(track)[0].rendition_key
    response = api_client.get(f"{RenditionStorage.url_prefix(track_id=track.pk, rendition_key=key)}/aac-64/seg00000.ts")
    assert response.status_code == 200 and response["Content-Type"] == "video/mp2t"


def test_direct_play_ranges_and_accel_redirect(listener, user, media: Path, settings):
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    data = (media / "song.mp3").read_bytes()
    full = listener.get(f"/api/v1/tracks/{track.pk}/file")
    assert full.status_code == 200 and full["Content-Type"] == "audio/mpeg" and full["Accept-Ranges"] == "bytes"
    assert b"".join(full.streaming_content) == data
    part = listener.get(f"/api/v1/tracks/{track.pk}/file", HTTP_RANGE="bytes=100-199")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert b"".join(part.streaming_content) == data[100:200]
    suffix = listener.get(f"/api/v1/tracks/{track.pk}/file", HTTP_RANGE="bytes=-10")
    assert b"".join(suffix.streaming_content) == data[-10:]
    unsatisfiable = listener.get(f"/api/v1/tracks/{track.pk}/file", HTTP_RANGE=f"bytes={len(data)}-")
    assert unsatisfiable.status_code == 416 and unsatisfiable["Content-Range"] == f"bytes */{len(data)}"
    assert listener.get(f"/api/v1/tracks/{track.pk}/files/1").status_code == 404
    assert listener.get(f"/api/v1/tracks/{track.pk}/files/-1").status_code == 404
    settings.USE_X_ACCEL_REDIRECT = True
    accel = listener.get(f"/api/v1/tracks/{track.pk}/file")
    assert accel.status_code == 200 and accel.content == b""
    assert accel["X-Accel-Redirect"] == f"/_originals{media}/song.mp3"
    # The file was checked on its descriptor, which is closed: nginx sends it. (Not a count of open
    # descriptors: other threads of the test process open and close theirs meanwhile.)
    assert os.path.realpath(media / "song.mp3") not in open_paths()


def open_paths() -> list[str]:
    """What this process's open descriptors point at."""
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed between the listing and the read
            pass
    return paths


def test_players_accept_headers_get_the_media_and_errors_stay_json(listener, user, media: Path):
    # Players ask for media with their own Accept headers; DRF's negotiation used to answer 406.
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    ready(track)
    data = (media / "song.mp3").read_bytes()
    for accept in ("audio/mpeg", "audio/*", "application/vnd.apple.mpegurl"):
        part = listener.get(f"/api/v1/tracks/{track.pk}/file", HTTP_RANGE="bytes=0-99", HTTP_ACCEPT=accept)
        assert part.status_code == 206 and b"".join(part.streaming_content) == data[:100], accept
        master = listener.get(f"/api/v1/tracks/{track.pk}/master.m3u8", HTTP_ACCEPT=accept)
        assert master.status_code == 200 and master.content.startswith(b"#EXTM3U"), accept
        missing = listener.get("/api/v1/tracks/999999/file", HTTP_ACCEPT=accept)
        assert missing.status_code == 404 and missing["Content-Type"] == "application/json", accept


def test_book_files_one_by_one(listener, user, media: Path):
    track = book_track(media, parts=2, seconds=2)
    LibraryAccessFactory(user=user, library=track.library)
    assert listener.get(f"/api/v1/tracks/{track.pk}/file").status_code == 404
    second = listener.get(f"/api/v1/tracks/{track.pk}/files/1")
    assert b"".join(second.streaming_content) == (media / "Author" / "Book" / "02.mp3").read_bytes()


def test_download_is_one_playable_m4a(listener, user, media: Path):
    track = music_track(media, seconds=14)
    LibraryAccessFactory(user=user, library=track.library)
    row = next(r for r in ready(track) if r.profile == "aac-128")
    response = listener.get(f"/api/v1/tracks/{track.pk}/download", {"profile": "aac-128"})
    assert response.status_code == 200 and response["Content-Type"] == "audio/mp4"
    assert "song.mp3 (aac-128).m4a" in response["Content-Disposition"]
    body = b"".join(response.streaming_content)
    assert len(body) == row.size_bytes
    ranged = listener.get(f"/api/v1/tracks/{track.pk}/download", {"profile": "aac-128"}, HTTP_RANGE="bytes=700-900")
    assert b"".join(ranged.streaming_content) == body[700:901]
    out = media.parent / "download.m4a"
    out.write_bytes(body)
    run = subprocess.run(
        [
            settings.FFMPEG_BINARY,
            "-nostdin",
            "-hide_banner",
            "-v",
            "error",
            "-stats",
            "-i",
            str(out),
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert abs(decoded_seconds(run.stderr) - track.duration_ms / 1000) <= 0.5
    bad = listener.get(f"/api/v1/tracks/{track.pk}/download", {"profile": "mp3-9000"})
    assert bad.status_code == 400 and "profile" in bad.json()["error"]["fields"]
    assert listener.get(f"/api/v1/tracks/{track.pk}/download", {"profile": "flac"}).status_code == 400


@pytest.mark.django_db(transaction=True)  # no test transaction: the send runs at once, as in a request
def test_a_stream_start_while_the_broker_is_down_answers_and_sends_again_later(listener, user, media, monkeypatch):
    """Redis (the broker) down: the decision is answered (HLS, not ready yet) rather than a 500, the rows
    stay pending, and the next start once the broker is back queues the transcode."""
    track = music_track(media)
    LibraryAccessFactory(user=user, library=track.library)
    dead = Celery("dead-broker", broker=f"redis://127.0.0.1:{free_port()}/0", set_as_current=False)
    monkeypatch.setattr(services.renditions, "current_app", dead)

    response = listener.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "aac"})

    assert response.status_code == 200
    assert response.json()["mode"] == "hls" and response.json()["ready"] is False
    assert set(Rendition.objects.filter(track=track).values_list("status", flat=True)) == {"pending"}
    assert broker_queue_messages(services.INTERACTIVE_QUEUE) == []
    monkeypatch.setattr(services.renditions, "current_app", current_app)
    assert listener.get(f"/api/v1/tracks/{track.pk}/stream", {"codecs": "aac"}).status_code == 200
    assert [m["headers"]["argsrepr"] for m in broker_queue_messages(services.INTERACTIVE_QUEUE)] == [f"[{track.pk}]"]
