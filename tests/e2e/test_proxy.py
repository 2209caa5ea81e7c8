"""Revenge deployed as shipped: nginx (deploy/nginx) in front of gunicorn, a Celery worker and beat.

Set-up as an operator would do it (manage.py), then everything through nginx over HTTPS.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import m3u8
import pytest
from django.conf import settings
from django.test import override_settings

from apps.streaming.signing import hls_signature
from tests.artwork import image_bytes
from tests.audio import make_audio
from tests.conftest import free_port, wait_for
from tests.e2e.nginx import NginxSite, nginx_available, stop
from tests.e2e.stack import HLS_SECRET, Client, Reply, Stack
from tests.library.test_artwork_api import art_table
from tests.ops.test_http import EMPTY_RANGE_TABLE, RANGE_TABLE, range_case

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not nginx_available() and not os.environ.get("REVENGE_REQUIRE_SYSTEM_TOOLS"),
        reason="nginx is not installed (.ci/run installs it, and requires it)",
    ),
]

TITLES = {"01 Ouverture été.mp3": ("Ouverture", 20.0), "02 Second.mp3": ("Second", 12.0)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_blocker):
    folder = tmp_path_factory.mktemp("proxy")
    media = folder / "media" / "Artist" / "Album"
    for index, (name, (title, seconds)) in enumerate(TITLES.items()):
        make_audio(media / name, seconds=seconds, frequency=330 + 110 * index,
                   tags={"title": title, "artist": "Artist", "album": "Album", "track": str(index + 1)})  # fmt: skip
    (media / "cover.jpg").write_bytes(image_bytes((200, 30, 30)))  # the album's cover, for /art/
    deployment = Stack(folder=folder, media=folder / "media")
    try:
        with django_db_blocker.unblock():
            deployment.start()
        deployment.token = deployment.login()
        library_id = deployment.create_library("Music", deployment.media)
        deployment.tracks = {t["title"]: t for t in deployment.scan_and_wait(deployment.token, library_id)}
        yield deployment
    finally:
        with django_db_blocker.unblock():
            deployment.stop()


def gunicorn_requests(stack: Stack) -> list[str]:
    """The request lines gunicorn logged (its access log: `<peer> "<request line>" <status> ...`)."""
    return re.findall(r'"((?:GET|POST|PUT|HEAD|DELETE) [^"]+)"', stack.gunicorn_log.read_text())


def nginx_log(stack: Stack) -> list[dict]:
    return [json.loads(line) for line in stack.site.access_log.read_text().splitlines()]


def logged(stack: Stack, reply) -> dict:
    """nginx's log entry of a reply (by its X-Request-ID); nginx writes it just after the last byte."""
    request_id = reply.headers["X-Request-ID"]
    found: list[dict] = []
    wait_for(lambda: found.extend(e for e in nginx_log(stack) if e["request_id"] == request_id) or found,
             timeout_s=5, what="the access log entry")  # fmt: skip
    return found[0]


def test_plain_http_is_redirected_to_https(stack):
    reply = Client(stack.site.http_port, tls=False).get("/api/v1/tracks?page=2")
    assert reply.status == 301
    assert reply.headers["Location"] == "https://127.0.0.1/api/v1/tracks?page=2"


def test_browse_and_stream_with_every_hls_byte_from_nginx(stack):
    api = stack.client(token=stack.token)
    tracks = api.get("/api/v1/tracks").json()["results"]
    track = stack.tracks["Ouverture"]
    assert {t["title"] for t in tracks} == {"Ouverture", "Second"}

    decision = api.get(f"/api/v1/tracks/{track['id']}/stream?codecs=aac")
    assert decision.status == 200
    assert decision.json()["mode"] == "hls" and decision.json()["ready"] is True
    assert decision.headers["Cache-Control"] == "private, no-store"

    master = api.get(decision.json()["url"], headers={"Accept-Encoding": "gzip"})
    assert master.status == 200
    assert master.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert master.headers["Cache-Control"] == "private, max-age=60"
    assert master.headers["Content-Encoding"] == "gzip"  # playlists are compressed...
    playlist = m3u8.loads(gzip.decompress(master.body).decode())
    assert len(playlist.playlists) == 3  # the default aac ladder (64, 128, 256) of an MP3 source

    fetched = 0
    for variant in playlist.playlists:
        media = api.get(variant.uri, headers={"Accept-Encoding": "gzip"})
        assert media.status == 200, variant.uri
        assert media.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert media.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        text = (
            gzip.decompress(media.body).decode() if media.headers["Content-Encoding"] == "gzip" else media.body.decode()
        )
        folder = variant.uri.rsplit("/", 1)[0]
        _, _, _, _, track_id, key, profile = urlsplit(folder).path.split("/")
        on_disk = stack.renditions / track_id / key / profile
        for name in ["init.mp4", *(s.uri for s in m3u8.loads(text).segments)]:
            segment = api.get(f"{folder}/{name}", headers={"Accept-Encoding": "gzip"})
            assert segment.status == 200, name
            assert segment.headers["Content-Type"] == "audio/mp4"
            assert "Content-Encoding" not in segment.headers  # ...segments never
            assert segment.body == (on_disk / name).read_bytes()
            assert segment.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert segment.header_count("Strict-Transport-Security") == 1
            assert segment.headers["X-Content-Type-Options"] == "nosniff"
            assert "Content-Security-Policy" not in segment.headers  # documents only
            fetched += 1
    assert fetched > 3 * 4

    # No /hls/ request reached gunicorn; nginx logged every one of them with no upstream.
    assert not [line for line in gunicorn_requests(stack) if " /hls/" in line]

    def hls_lines() -> list[dict]:
        return [entry for entry in nginx_log(stack) if entry["uri"].startswith("/hls/")]

    wait_for(lambda: len(hls_lines()) >= fetched + len(playlist.playlists), timeout_s=5, what="nginx's log")
    assert {entry["upstream_addr"] for entry in hls_lines()} == {""}
    assert any(f"/api/v1/tracks/{track['id']}/master.m3u8" in line for line in gunicorn_requests(stack))


def test_security_headers_once_on_app_responses(stack):
    reply = stack.client(token=stack.token).get("/api/v1/tracks")
    for name in ("Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options",
                 "Referrer-Policy", "Permissions-Policy"):  # fmt: skip
        assert reply.header_count(name) == 1, name
    # The policy nginx sends is the one the app holds its pages to.
    assert reply.headers["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    assert reply.headers["X-Frame-Options"] == "DENY"


def test_static_files_come_from_nginx(stack):
    manifest = json.loads((stack.folder / "static" / "staticfiles.json").read_text())["paths"]
    hashed = manifest["admin/css/base.css"]
    reply = stack.client().get(f"/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert reply.status == 200
    assert reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert reply.headers["Content-Encoding"] == "gzip"  # collectstatic's .gz, via gzip_static
    assert gzip.decompress(reply.body) == (stack.folder / "static" / hashed).read_bytes()
    assert not [line for line in gunicorn_requests(stack) if " /static/" in line]


def _signed_as_spelled(expires: str, track: str, key: str) -> str:
    material = f"{expires}/{track}/{key} {settings.HLS_SIGNING_SECRET}".encode()
    return base64.urlsafe_b64encode(hashlib.md5(material, usedforsecurity=False).digest()).decode().rstrip("=")


def _hls_table(stack: Stack) -> list[tuple[str, str, int]]:
    """(what, path, expected status) for signed /hls/ URLs, valid and not."""
    track = stack.tracks["Ouverture"]
    other = stack.tracks["Second"]
    folder = next(p for p in (stack.renditions / str(track["id"])).iterdir())
    other_folder = next(p for p in (stack.renditions / str(other["id"])).iterdir())
    key, other_key = folder.name, other_folder.name
    now = int(time.time())
    with override_settings(HLS_SIGNING_SECRET=HLS_SECRET):
        expires = now + 3600
        sig = hls_signature(expires=expires, track_id=track["id"], rendition_key=key)
        expired = now - 60
        expired_sig = hls_signature(expires=expired, track_id=track["id"], rendition_key=key)
        other_sig = hls_signature(expires=expires, track_id=other["id"], rendition_key=other_key)
        # Signed over the digits as spelled (nginx's secure_link_md5 over its captures): only with the secret.
        zero_expiry_sig = _signed_as_spelled(f"0{expires}", str(track["id"]), key)
        zero_track_sig = _signed_as_spelled(str(expires), f"0{track['id']}", key)
    with override_settings(HLS_SIGNING_SECRET="not the deployment's secret"):
        foreign_sig = hls_signature(expires=expires, track_id=track["id"], rendition_key=key)
    base = f"/hls/{expires}/{sig}/{track['id']}/{key}/aac-128"
    tampered = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    return [
        ("valid playlist", f"{base}/index.m3u8", 200),
        ("valid init", f"{base}/init.mp4", 200),
        ("valid segment", f"{base}/seg00000.m4s", 200),
        ("padded signature", f"/hls/{expires}/{sig}==/{track['id']}/{key}/aac-128/init.mp4", 200),
        ("missing segment", f"{base}/seg99999.m4s", 404),
        ("missing profile", f"{base.replace('aac-128', 'aac-999')}/index.m3u8", 404),
        ("tampered signature", f"/hls/{expires}/{tampered}/{track['id']}/{key}/aac-128/init.mp4", 403),
        ("short signature", f"/hls/{expires}/{sig[:10]}/{track['id']}/{key}/aac-128/init.mp4", 403),
        ("other secret", f"/hls/{expires}/{foreign_sig}/{track['id']}/{key}/aac-128/init.mp4", 403),
        ("later expiry", f"/hls/{expires + 60}/{sig}/{track['id']}/{key}/aac-128/init.mp4", 403),
        ("expired", f"/hls/{expired}/{expired_sig}/{track['id']}/{key}/aac-128/init.mp4", 410),
        ("other track's signature", f"/hls/{expires}/{other_sig}/{track['id']}/{key}/aac-128/init.mp4", 403),
        ("signature moved to other track", f"/hls/{expires}/{sig}/{other['id']}/{key}/aac-128/init.mp4", 403),
        ("other track's key", f"/hls/{expires}/{sig}/{track['id']}/{other_key}/aac-128/init.mp4", 403),
        ("unknown file name", f"{base}/secret.txt", 404),
        ("uppercase key", f"/hls/{expires}/{sig}/{track['id']}/{key.upper()}/aac-128/init.mp4", 404),
        ("dotdot out of rendition", f"{base}/../../../../../../etc/passwd", 404),
        ("dotdot to another profile", f"{base}/../aac-64/init.mp4", 200),
        ("encoded dotdot", f"{base}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", 404),
        ("encoded slash", f"{base}/..%2f..%2f..%2fetc%2fpasswd", 404),
        ("dotdot above root", "/hls/../../../etc/passwd", 400),
        ("double slashes", f"/hls//{expires}//{sig}/{track['id']}/{key}/aac-128//init.mp4", 200),
        ("dot segments", f"/hls/./{expires}/{sig}/./{track['id']}/{key}/aac-128/./init.mp4", 200),
        ("NUL", f"{base}/init.mp4%00.m3u8", 400),
        ("trailing slash", f"{base}/init.mp4/", 404),
        ("bare prefix", "/hls/", 404),
        ("query ignored", f"{base}/init.mp4?download=1", 200),
        # Leading zeros (issue 13, finding 6): the digits are signed as spelled, so a zero in front is
        # another expiry or track, and the folder is the track as spelled.
        ("zero before expiry", f"/hls/0{expires}/{sig}/{track['id']}/{key}/aac-128/init.mp4", 403),
        ("zero before track", f"/hls/{expires}/{sig}/0{track['id']}/{key}/aac-128/init.mp4", 403),
        ("zeros before both", f"/hls/00{expires}/{sig}/00{track['id']}/{key}/aac-128/init.mp4", 403),
        ("zero expiry signed so", f"/hls/0{expires}/{zero_expiry_sig}/{track['id']}/{key}/aac-128/init.mp4", 200),
        ("zero track signed so", f"/hls/{expires}/{zero_track_sig}/0{track['id']}/{key}/aac-128/init.mp4", 404),
    ]


def test_signed_urls_get_the_same_answer_from_nginx_and_from_django(stack):
    table = _hls_table(stack)
    via_nginx = stack.client()
    # Straight to gunicorn: Django's /hls/ view, as in embedded mode. From a trusted address and marked
    # as HTTPS, so the deployment's SSL redirect does not answer first.
    via_django = stack.direct_client()
    https = {"X-Forwarded-Proto": "https"}
    rows = []
    for what, path, expected in table:
        rows.append((what, via_nginx.get(path).status, via_django.get(path, headers=https).status, expected))
    mismatched = [row for row in rows if not (row[1] == row[2] == row[3])]
    assert not mismatched, "(what, nginx, django, expected):\n" + "\n".join(map(str, mismatched))


def test_cover_urls_get_the_same_answer_from_nginx_and_from_django(stack):
    """/art/: the API hands out signed cover URLs; nginx serves them alone, and Django's fallback view answers
    every valid and invalid URL exactly as nginx does."""
    api = stack.client(token=stack.token)
    album_id = stack.tracks["Ouverture"]["album"]["id"]
    wait_for(lambda: api.get(f"/api/v1/albums/{album_id}").json()["cover"] is not None,
             timeout_s=60, what="the cover's variants", process=stack.processes["worker"])  # fmt: skip
    redirect = api.get(f"/api/v1/albums/{album_id}/cover?size=200", headers={"Accept": "image/webp,*/*"})
    assert redirect.status == 302
    location = redirect.headers["Location"]
    content_hash = location.split("/")[4]
    assert location.endswith(f"/{content_hash}/300.webp")
    served = stack.client().get(location)
    assert (served.status, served.headers["Content-Type"], served.body[:4]) == (200, "image/webp", b"RIFF")
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["ETag"] == f'"{content_hash}"'
    wait_for(lambda: [e for e in nginx_log(stack) if e["uri"] == location], timeout_s=5, what="nginx's log")
    assert {e["upstream_addr"] for e in nginx_log(stack) if e["uri"] == location} == {""}  # nginx alone
    via_nginx, via_django = stack.client(), stack.direct_client()
    https = {"X-Forwarded-Proto": "https"}
    rows = [
        (what, via_nginx.get(path).status, via_django.get(path, headers=https).status, expected)
        for what, path, expected in art_table(content_hash, HLS_SECRET)
    ]
    mismatched = [row for row in rows if not (row[1] == row[2] == row[3])]
    assert not mismatched, "(what, nginx, django, expected):\n" + "\n".join(map(str, mismatched))


def _direct_url(stack: Stack, title: str) -> str:
    decision = stack.client(token=stack.token).get(f"/api/v1/tracks/{stack.tracks[title]['id']}/stream").json()
    assert decision["mode"] == "direct"
    return decision["url"]


@pytest.mark.parametrize(
    ("range_header", "status", "first", "last"),
    [
        (None, 200, 0, -1),
        ("bytes=0-99", 206, 0, 99),
        ("bytes=1000-1999", 206, 1000, 1999),
        ("bytes=5000-", 206, 5000, -1),
        ("bytes=-500", 206, -500, -1),
        ("bytes=0-0", 206, 0, 0),
        ("bytes=0-999999999", 206, 0, -1),
        ("bytes=999999999-", 416, None, None),
    ],
)
def test_direct_play_bytes_come_from_nginx_through_x_accel_redirect(stack, range_header, status, first, last):
    url = _direct_url(stack, "Ouverture")
    source = (stack.media / "Artist" / "Album" / "01 Ouverture été.mp3").read_bytes()
    headers = {"Range": range_header} if range_header else {}
    reply = stack.client().get(url, headers=headers)

    assert reply.status == status
    assert "X-Accel-Redirect" not in reply.headers
    if status == 416:
        assert reply.headers["Content-Range"] == f"bytes */{len(source)}"
        return
    start = first % len(source)
    end = last % len(source)
    assert reply.body == source[start : end + 1]
    assert reply.headers["Content-Type"] == "audio/mpeg"
    if status == 200:
        assert reply.headers["Accept-Ranges"] == "bytes"
    else:
        assert reply.headers["Content-Range"] == f"bytes {start}-{end}/{len(source)}"
    entry = logged(stack, reply)
    assert entry["upstream_addr"] == f"127.0.0.1:{stack.gunicorn_port}"  # authorized by the app...
    assert entry["bytes"] == end - start + 1  # ...bytes by nginx; gunicorn sent an empty body:
    # gunicorn writes its access line once the answer is sent, which may be just after nginx's.
    lines: list[str] = []
    wait_for(lambda: lines.extend(x for x in stack.gunicorn_log.read_text().splitlines() if urlsplit(url).path in x)
             or lines, timeout_s=5, what="gunicorn's access log line")  # fmt: skip
    assert re.search(r'" 200 0 ', lines[-1]), lines[-1]


def test_range_answers_are_the_same_from_nginx_and_from_django(stack):
    """nginx's static module is the oracle (issue 13, finding 8): one table of Range headers, sent to nginx
    (/hls/ served by itself, an original through X-Accel-Redirect) and to Django without nginx (/hls/ straight
    to gunicorn), must get the status and Content-Range the table says from each."""
    track = stack.tracks["Ouverture"]
    folder = next((stack.renditions / str(track["id"])).iterdir())
    with override_settings(HLS_SIGNING_SECRET=HLS_SECRET):
        expires = int(time.time()) + 3600
        signature = hls_signature(expires=expires, track_id=track["id"], rendition_key=folder.name)
    base = f"/hls/{expires}/{signature}/{track['id']}/{folder.name}/aac-128"
    segment = folder / "aac-128" / "seg00000.m4s"
    empty = folder / "aac-128" / "seg99998.m4s"
    original = stack.media / "Artist" / "Album" / "01 Ouverture été.mp3"
    via_nginx, via_django = stack.client(), stack.direct_client()
    https = {"X-Forwarded-Proto": "https"}  # from a trusted address: no redirect to HTTPS first

    def answer(client: Client, path: str, header: str | None, extra: dict | None = None) -> tuple:
        reply = client.get(path, headers={**({"Range": header} if header is not None else {}), **(extra or {})})
        return reply.status, reply.headers.get("Content-Range")

    empty.write_bytes(b"")
    try:
        rows = []
        for what, path, size, table, answers_django in [
            ("segment", f"{base}/{segment.name}", segment.stat().st_size, RANGE_TABLE, True),
            ("empty file", f"{base}/{empty.name}", 0, EMPTY_RANGE_TABLE, True),
            # Django answers X-Accel-Redirect here; its own answer without nginx is the segment's, above.
            ("original", _direct_url(stack, "Ouverture"), original.stat().st_size, RANGE_TABLE, False),
        ]:
            for row in table:
                header, status, content_range = range_case(row, size)
                answers = {"nginx": answer(via_nginx, path, header)}
                if answers_django:
                    answers["django"] = answer(via_django, path, header, https)
                rows.append((what, header, answers, (status, content_range)))
    finally:
        empty.unlink()
    assert len(rows) == 2 * len(RANGE_TABLE) + len(EMPTY_RANGE_TABLE)
    mismatched = [row for row in rows if any(got != row[3] for got in row[2].values())]
    assert not mismatched, "(what, Range, answers, expected):\n" + "\n".join(map(str, mismatched))


def test_direct_play_if_range(stack):
    url = _direct_url(stack, "Second")
    source = (stack.media / "Artist" / "Album" / "02 Second.mp3").read_bytes()
    client = stack.client()
    full = client.get(url)
    etag, modified = full.headers["ETag"], full.headers["Last-Modified"]
    same = client.get(url, headers={"Range": "bytes=10-19", "If-Range": etag})
    same_date = client.get(url, headers={"Range": "bytes=10-19", "If-Range": modified})
    changed = client.get(url, headers={"Range": "bytes=10-19", "If-Range": '"something-else"'})

    assert full.status == 200 and full.body == source
    assert same.status == 206 and same.body == source[10:20]
    assert same_date.status == 206 and same_date.body == source[10:20]
    assert changed.status == 200 and changed.body == source


def test_direct_play_refuses_a_bad_token_without_bytes(stack):
    url = _direct_url(stack, "Second")
    reply = stack.client().get(re.sub(r"token=[^&]+", "token=forged", url))
    assert reply.status == 404
    assert reply.headers["Content-Type"] == "application/json"
    assert b"ID3" not in reply.body


def test_internal_location_is_not_reachable_from_outside(stack):
    path = stack.media / "Artist" / "Album" / "02 Second.mp3"
    assert stack.client().get("/_originals" + str(path).replace(" ", "%20")).status == 404
    assert stack.client().get("/_originals/etc/passwd").status == 404


def test_progress_put_and_get_through_nginx(stack):
    api = stack.client(token=stack.token)
    track_id = stack.tracks["Second"]["id"]
    put = api.request("PUT", f"/api/v1/progress/{track_id}", body={"position_ms": 4321, "device_id": "e2e-phone"})
    got = api.get(f"/api/v1/progress/{track_id}")
    bad = api.request("PUT", f"/api/v1/progress/{track_id}", body={"position_ms": -5, "device_id": "e2e-phone"})

    assert put.status == 200, put.body
    assert got.status == 200 and got.json()["position_ms"] == 4321
    assert bad.status == 400 and "position_ms" in bad.json()["error"]["fields"]
    assert api.get(f"/api/v1/progress/{track_id}").json()["position_ms"] == 4321


def _token_ip(reply) -> str:
    assert reply.status == 201, reply.body
    return reply.json()["token_info"]["created_from_ip"]


def test_forwarded_for_is_believed_only_from_trusted_peers(stack):
    credentials = {"username": "operator", "password": "e2e correct horse battery staple"}
    forged = {"X-Forwarded-For": "198.51.100.66"}
    # A client forging X-Forwarded-For through nginx: nginx appends the real peer, the app takes that.
    through_nginx = stack.client(source="127.0.0.2").request("POST", "/api/v1/auth/token", body=credentials,
                                                             headers=forged)  # fmt: skip
    # A trusted load balancer (127.0.0.3) in front of nginx names the client: believed.
    through_balancer = stack.client(source="127.0.0.3").request(
        "POST", "/api/v1/auth/token", body=credentials, headers={"X-Forwarded-For": "203.0.113.7"}
    )
    # Straight to gunicorn from an untrusted peer: neither the address nor the scheme is believed.
    direct_untrusted = stack.direct_client(source="127.0.0.2").request(
        "POST", "/api/v1/auth/token", body=credentials, headers={**forged, "X-Forwarded-Proto": "https"}
    )

    assert _token_ip(through_nginx) == "127.0.0.2"
    assert _token_ip(through_balancer) == "203.0.113.7"
    assert direct_untrusted.status == 301  # still plain HTTP to the app: sent to https
    assert direct_untrusted.headers["Location"].startswith("https://")


def test_metrics_and_readiness_only_from_internal_addresses(stack):
    inside = stack.client(source="127.0.0.1")
    outside = stack.client(source="127.0.0.2")  # not in the shipped allowlist (127.0.0.1, RFC 1918, ULA)

    metrics = inside.get("/metrics")
    assert metrics.status == 200
    assert b"revenge_stream_starts_total" in metrics.body
    assert inside.get("/readyz").status == 200
    for path in ("/metrics", "/readyz"):
        denied = outside.get(path)
        assert denied.status == 403
        assert b"revenge_" not in denied.body
    # nginx answered: the denied requests never reached the app.
    entries = [e for e in nginx_log(stack) if e["remote_addr"] == "127.0.0.2" and e["uri"] in ("/metrics", "/readyz")]
    assert entries and all(e["upstream_addr"] == "" for e in entries)


def test_sign_in_is_rate_limited_by_nginx(stack):
    client = stack.client(source="127.0.0.4")
    # Incomplete credentials: answered at once (400) without hashing a password, so the nine requests
    # take well under the 6 s in which the bucket (10 per minute) frees a place.
    started = time.monotonic()
    statuses = [client.request("POST", "/api/v1/auth/token", body={"username": "operator"}).status for _ in range(9)]
    assert time.monotonic() - started < 5
    # rate=10r/m with burst=5: the first request and 5 more pass at once, the rest wait for the bucket.
    assert statuses[:6] == [400] * 6
    assert statuses[6:] == [429] * 3
    # Another address is not affected.
    assert (
        stack.client(source="127.0.0.5")
        .request("POST", "/api/v1/auth/token", body={"username": "operator", "password": "wrong"})
        .status
        == 401
    )


def test_ffmpeg_plays_the_master_playlist_through_nginx_to_the_end(stack):
    track = stack.tracks["Ouverture"]
    url = stack.client(token=stack.token).get(f"/api/v1/tracks/{track['id']}/stream?codecs=aac").json()["url"]
    result = subprocess.run(
        [settings.FFMPEG_BINARY, "-hide_banner", "-nostats",
         "-i", f"https://127.0.0.1:{stack.site.https_port}{url}", "-map", "0:a:0", "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
        # The test's own certificate as the trust anchor: ffmpeg checks it on every playlist and segment.
        env={**os.environ, "SSL_CERT_FILE": str(stack.site.folder / "tls" / "fullchain.pem")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    times = re.findall(r"time=(\d+):(\d+):(\d+\.\d+)", result.stderr)
    hours, minutes, seconds = times[-1]
    decoded = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    assert abs(decoded - track["duration_ms"] / 1000) < 0.5, (decoded, track["duration_ms"])


def test_shipped_config_passes_nginx_t(stack):
    result = stack.site.check()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


# Last in the module: they add a library to the shared deployment.
def test_a_symlink_swapped_in_after_the_scan_is_not_served_through_nginx(stack):
    """Issue 13, finding 1, as deployed: the app refuses the swapped file before any X-Accel-Redirect."""
    secret = stack.folder / "data" / "secret_key"
    secret.write_bytes(b"SECRET_KEY=e2e-do-not-leak\n")
    folder = stack.folder / "swap-library"
    make_audio(folder / "Swapped.mp3", seconds=2, tags={"title": "Swapped", "artist": "Swap"})
    library_id = stack.create_library("Swap", folder)
    track = next(t for t in stack.scan_and_wait(stack.token, library_id) if t["title"] == "Swapped")
    url = stack.client(token=stack.token).get(f"/api/v1/tracks/{track['id']}/stream").json()["url"]
    assert stack.client().get(url).status == 200
    (folder / "Swapped.mp3").unlink()
    (folder / "Swapped.mp3").symlink_to(secret)

    reply = stack.client().get(url)

    assert reply.status == 404
    assert b"SECRET_KEY" not in reply.body
    entry = logged(stack, reply)
    assert entry["upstream_addr"] == f"127.0.0.1:{stack.gunicorn_port}" and entry["status"] == 404


class _AccelStub(BaseHTTPRequestHandler):
    """An app that sends nginx wherever it is asked: `?to=<path>` → `X-Accel-Redirect: /_originals<path>`.
    It stands for a link swapped in after the app's own check, the one case only nginx can still catch."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        target = parse_qs(urlsplit(self.path).query)["to"][0]
        self.send_response(200)
        self.send_header("X-Accel-Redirect", "/_originals" + quote(target))
        self.send_header("Content-Type", "audio/mpeg")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_originals_location_follows_no_symlink(tmp_path):
    """The shipped /_originals/ location (disable_symlinks on): a symlink on the way to the file, a swapped
    file or a linked folder, is refused, whatever the app answered."""
    library, outside = tmp_path / "library", tmp_path / "outside"
    library.mkdir()
    outside.mkdir()
    secret = outside / "secret_key"
    secret.write_bytes(b"SECRET_KEY=e2e-do-not-leak\n")
    (library / "song.mp3").write_bytes(b"ID3 the scanned file")
    (library / "swapped.mp3").symlink_to(secret)
    (library / "Linked").symlink_to(outside, target_is_directory=True)
    # The links work: only nginx's rule can refuse them.
    assert (library / "swapped.mp3").read_bytes() == (library / "Linked" / "secret_key").read_bytes()

    app = ThreadingHTTPServer(("127.0.0.1", free_port()), _AccelStub)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    site = NginxSite(
        folder=tmp_path / "nginx", http_port=free_port(), https_port=free_port(),
        upstream=f"127.0.0.1:{app.server_address[1]}", renditions_root=tmp_path, static_root=tmp_path,
        hls_secret="unused",
    )  # fmt: skip
    site.render()
    nginx = site.start()
    try:
        client = Client(site.https_port)

        def get(path: Path) -> Reply:
            return client.get("/api/v1/tracks/1/file?" + urlencode({"to": str(path)}))

        regular, swapped = get(library / "song.mp3"), get(library / "swapped.mp3")
        linked = get(library / "Linked" / "secret_key")
    finally:
        stop(nginx)
        app.shutdown()
        app.server_close()

    assert (regular.status, regular.body) == (200, b"ID3 the scanned file")
    assert swapped.status == 403 and b"SECRET_KEY" not in swapped.body
    assert linked.status == 404 and b"SECRET_KEY" not in linked.body


def test_a_growing_live_playlist_is_no_cache_from_nginx_and_from_django(stack):
    """Issue 18: the live playlist of a growing rendition is revalidated on every load, through nginx and
    through the Django view alike; everything else under /hls/ stays immutable."""
    track = stack.tracks["Ouverture"]
    folder = next((stack.renditions / str(track["id"])).iterdir())
    live = folder / "aac-128" / "live.m3u8"
    live.write_text((folder / "aac-128" / "index.m3u8").read_text().replace("VOD", "EVENT"))
    with override_settings(HLS_SIGNING_SECRET=HLS_SECRET):
        expires = int(time.time()) + 3600
        signature = hls_signature(expires=expires, track_id=track["id"], rendition_key=folder.name)
    base = f"/hls/{expires}/{signature}/{track['id']}/{folder.name}/aac-128"
    https = {"X-Forwarded-Proto": "https"}
    try:
        for client in (stack.client(), stack.direct_client()):
            reply = client.get(f"{base}/live.m3u8", headers=https)
            assert reply.status == 200 and reply.body == live.read_bytes()
            assert reply.headers["Cache-Control"] == "no-cache"
            assert reply.headers["Content-Type"] == "application/vnd.apple.mpegurl"
            for name in ("index.m3u8", "init.mp4", "seg00000.m4s"):
                reply = client.get(f"{base}/{name}", headers=https)
                assert reply.status == 200 and reply.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert client.get(f"{base}/seg09999.m4s", headers=https).status == 404  # not made yet
            assert client.get(f"{base}/other.m3u8", headers=https).status == 404
    finally:
        live.unlink()


def test_opensubsonic_clients_through_nginx(stack):
    """The OpenSubsonic API behind the shipped nginx, driven by py-sonic (its insecure mode: the site's
    certificate is self-signed) and py-opensonic (given a session that skips the check) over HTTPS. `stream`
    of the original is authorized by the app and sent by nginx (X-Accel-Redirect, Range by nginx); a rendition
    streamed as one fMP4 file comes from Django (nginx cannot join the files)."""
    import asyncio

    import aiohttp
    import libopensonic
    import libsonic

    from tests.e2e.stack import ADMIN_PASSWORD, ADMIN_USER
    from tests.streaming.hls_checks import decoded_seconds

    port, track = stack.site.https_port, stack.tracks["Ouverture"]
    source = (stack.media / "Artist" / "Album" / "01 Ouverture été.mp3").read_bytes()
    sonic = libsonic.Connection("https://127.0.0.1", ADMIN_USER, ADMIN_PASSWORD, port=port, legacyAuth=True,
                                insecure=True, appName="e2e-pysonic")  # fmt: skip
    assert sonic.ping() is True
    assert [a["name"] for a in sonic.getAlbumList2("alphabeticalByName")["albumList2"]["album"]] == ["Album"]
    assert sonic.stream(f"tr-{track['id']}", tformat="raw").read() == source

    opensonic = libopensonic.Connection("https://127.0.0.1", api_key=stack.token, port=port, app_name="e2e")

    async def insecure_session() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False))

    opensonic._async._sess = asyncio.run_coroutine_threadsafe(insecure_session(), opensonic._loop).result(10)
    try:
        found = opensonic.search3("ouverture")
        assert [(s.id, s.title) for s in found.song] == [(f"tr-{track['id']}", "Ouverture")]
        response = opensonic.stream(f"tr-{track['id']}", max_bit_rate=64, tformat="aac")  # the source is a 64k MP3
        body = asyncio.run_coroutine_threadsafe(response.read(), opensonic._loop).result(60)
        assert response.headers["Content-Type"] == "audio/mp4" and int(response.headers["Content-Length"]) == len(body)
    finally:
        opensonic.cleanup()
    run = subprocess.run([settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-stats", "-i", "pipe:0", "-f", "null",
                          "-"], input=body, capture_output=True, timeout=60)  # fmt: skip
    assert round(decoded_seconds(run.stderr.decode(errors="replace"))) == 20

    query = urlencode({"u": ADMIN_USER, "p": ADMIN_PASSWORD, "id": f"tr-{track['id']}", "format": "raw"})
    reply = stack.client().get(f"/rest/stream.view?{query}", headers={"Range": "bytes=100-199"})
    assert (reply.status, reply.body, reply.headers["Content-Type"]) == (206, source[100:200], "audio/mpeg")
    assert "X-Accel-Redirect" not in reply.headers
    entry = logged(stack, reply)
    assert entry["upstream_addr"] == f"127.0.0.1:{stack.gunicorn_port}" and entry["bytes"] == 100  # bytes by nginx
