"""OpenSubsonic benchmark: what apps do most, on one gunicorn with the deployment config.

    make bench-subsonic                    # 2 020 songs in 202 albums
    make bench-subsonic BENCH_SONGS=100000

On a throw-away database with a generated library (rows only; one real tone, transcoded, for `stream`):
(a) a full library sync as apps do it: `search3` with an empty query, 500 songs per page, until a short page;
    target: Navidrome 0.59's time per song on this machine class (287 ms for 2 020 songs, 142 us/song), i.e.
    <= 15 s for 100 000 songs (issue 19);
(b) the ceiling, in the same run on the same server: paging `GET /api/v1/tracks?page_size=500` over the same
    rows; ratio a/b as throughput (b's time / a's time), target >= 0.8;
(c) `getAlbumList2?type=newest&size=50` p50 (target <= 8 ms);
(d) `stream` time to first byte of a ready rendition (maxBitRate=64: the aac-64 rendition as one file) and of
    the original (format=raw), p50 (target <= 5 ms);
(e) `getCoverArt?size=300` of the tone's album (a folder image, its sizes made) p50 (target <= 8 ms).
Every /rest/ call authenticates as apps do by default: u + t + s with an app password. Sequential calls, one
client, like an app syncing; each figure is the median of interleaved repetitions.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")
_TMP = Path(tempfile.mkdtemp(prefix="revenge-bench-subsonic-"))
os.environ["RENDITIONS_ROOT"] = str(_TMP / "renditions")
os.environ["STREAMING_LADDER"] = "full"
os.environ["ARTWORK_ROOT"] = str(_TMP / "artwork")  # the 64k tone gets aac-64 (a fitted ladder would copy it)

import django  # noqa: E402
from PIL import Image  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts.services import api_token_issue, app_password_create  # noqa: E402
from apps.library.models import Album, Artwork, AudioFile, Library, LibraryKind, Track  # noqa: E402
from apps.library.services import library_scan  # noqa: E402
from apps.library.services.artwork import artwork_variants_build  # noqa: E402
from apps.streaming.services import rendition_transcode  # noqa: E402
from bench.load import database_url, free_port  # noqa: E402

PAGE = 500
NAVIDROME_US_PER_SONG = 287_000 / 2020  # its full sync of 2 020 songs (issue 19)


def generate(songs: int) -> None:
    library = Library.objects.create(name="bench", kind=LibraryKind.MUSIC, root_paths=["/nonexistent/bench"])
    album_count = max(1, songs // 10)
    albums = Album.objects.bulk_create(
        Album(library=library, title=f"Album {n}", album_artist=f"Artist {n % 97}", album_artists=[f"Artist {n % 97}"],
              artists=[f"Artist {n % 97}"], genres=[f"Genre {n % 13}"], year=1960 + n % 60, track_count=10,
              duration_ms=10 * 215_000)
        for n in range(album_count)
    )  # fmt: skip
    now = timezone.now()
    # The first 5 000 songs through the ORM; the rest copied from them by INSERT ... SELECT (every column as
    # it is but the ones that name the song): 100 000 songs in a minute instead of half an hour.
    template = min(songs, 5000)
    tracks = Track.objects.bulk_create(
        Track(library=library, album=albums[n // 10 % album_count], group_key=f"a{n // 10}/{n}.mp3",
              title=f"Song {n}", artists=[f"Artist {n // 10 % 97}"], album_artist=f"Artist {n // 10 % 97}",
              album_artists=[f"Artist {n // 10 % 97}"], genres=[f"Genre {n // 10 % 13}"], track_number=n % 10 + 1,
              disc_number=1, year=1960 + n // 10 % 60, duration_ms=215_000, source_fingerprint=f"fp{n}")
        for n in range(template)
    )  # fmt: skip
    AudioFile.objects.bulk_create(
        AudioFile(library=library, track=track, root="/nonexistent/bench", path=track.group_key,
                  group_key=track.group_key, size_bytes=5_160_000, mtime_ns=1, format="mp3", codec="mp3",
                  bitrate_kbps=192, sample_rate_hz=44100, channels=2, duration_ms=215_000, scanned_at=now)
        for track in tracks
    )  # fmt: skip
    first_album, last_template = albums[0].pk, tracks[-1].pk
    for start in range(template, songs, template):
        count = min(template, songs - start)
        # n = start + the template's own number (its fingerprint is fp<n>); its album is n // 10.
        number = f"({start} + substring(src.source_fingerprint from 3)::int)"
        _copy_rows(
            "library_track",
            {"group_key": f"'b{start}/' || src.group_key", "title": f"'Song ' || {number}",
             "source_fingerprint": f"'fp' || {number}",
             "album_id": f"{first_album} + ({number} / 10) % {album_count}"},
            f"FROM library_track src WHERE src.library_id = {library.pk} AND src.id <= {last_template} "
            f"ORDER BY src.id LIMIT {count}",
        )  # fmt: skip
        _copy_rows(
            "library_audiofile",
            {"track_id": "dst.id", "path": "dst.group_key", "group_key": "dst.group_key"},
            f"FROM library_audiofile src JOIN library_track dst ON dst.library_id = {library.pk} "
            f"AND dst.group_key = 'b{start}/' || src.group_key WHERE src.track_id <= {last_template}",
        )
    with connection.cursor() as cursor:
        # What autovacuum does to a real library some time after its scan: plans fit for 100 000 rows.
        cursor.execute("ANALYZE")


def _copy_rows(table: str, replaced: dict[str, str], source: str) -> None:
    """INSERT INTO table SELECT every insertable column from `source` (aliased src), some replaced."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND is_generated = 'NEVER' "
            "AND is_identity = 'NO' AND column_name <> 'id' ORDER BY ordinal_position",
            [table],
        )
        columns = [row[0] for row in cursor.fetchall()]
        values = ", ".join(replaced.get(column, f"src.{column}") for column in columns)
        cursor.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} {source}")


def real_track() -> Track:
    """One 60 s tone, scanned and transcoded (every rendition ready)."""
    folder = _TMP / "music"
    folder.mkdir(parents=True)
    subprocess.run(
        [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
         "sine=frequency=440:sample_rate=44100:duration=60", "-c:a", "libmp3lame", "-b:a", "192k",
         "-metadata", "title=Tone", "-metadata", "album=Tone album", str(folder / "tone.mp3")],
        check=True,
    )  # fmt: skip
    Image.new("RGB", (800, 800), (200, 30, 30)).save(folder / "cover.jpg", quality=90)
    library = Library.objects.create(name="real", kind=LibraryKind.MUSIC, root_paths=[str(folder)])
    library_scan(library=library)
    for artwork_id in Artwork.objects.values_list("pk", flat=True):
        artwork_variants_build(artwork_id=artwork_id)
    track = Track.objects.get(library=library)
    assert rendition_transcode(track_id=track.pk).outcome == "published"
    return track


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url(), "PORT": str(self.port),
               "PROMETHEUS_MULTIPROC_DIR": str(_TMP / "metrics")}  # fmt: skip
        (_TMP / "metrics").mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "--access-logfile", "/dev/null",
             "revenge.wsgi:application"],
            cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 180  # a machine shared with test runs can take a minute to start it
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.terminate()  # never leave a server behind
                self.process.wait(timeout=60)
                raise SystemExit("gunicorn did not start")
            time.sleep(0.2)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def _healthy(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def get(self, path: str, headers: dict[str, str] | None = None, *, first_byte: bool = False) -> tuple[bytes, float]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        if first_byte:
            response.read(1)
            elapsed = time.perf_counter() - started
            body = response.read()
        else:
            body = response.read()
            elapsed = time.perf_counter() - started
        assert response.status == 200, (path, response.status, body[:300])
        return body, elapsed * 1000

    def stop(self) -> None:
        self.conn.close()
        self.process.terminate()
        self.process.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--songs", type=int, default=int(os.environ.get("BENCH_SONGS", "2020")))
    parser.add_argument("--calls", type=int, default=200)
    # Each repetition syncs the library twice (search3 and REST): fewer of them on a big library.
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.songs <= 10_000 else 1)
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    server = None
    try:
        generate(args.songs)
        tone = real_track()
        user = get_user_model().objects.create_user("bench", password="bench password 1")
        user.is_staff = True  # sees every library, as a single-user server's owner does
        user.save()
        token = api_token_issue(user=user)[1]
        app_password = app_password_create(user=user, name="bench")[1]
        salt = "5a1t"
        auth = {"u": "bench", "t": hashlib.md5((app_password + salt).encode()).hexdigest(), "s": salt,
                "v": "1.16.1", "c": "bench", "f": "json"}  # fmt: skip
        server = Server()
        total = args.songs + 1

        def sync_subsonic(pages: int | None = None) -> float:
            elapsed, offset, seen = 0.0, 0, 0
            while True:
                query = urlencode({**auth, "query": "", "artistCount": 0, "albumCount": 0, "songCount": PAGE,
                                   "songOffset": offset})  # fmt: skip
                body, ms = server.get(f"/rest/search3?{query}")
                elapsed += ms
                songs = json.loads(body)["subsonic-response"]["searchResult3"].get("song", [])
                seen += len(songs)
                offset += PAGE
                if len(songs) < PAGE or offset // PAGE == pages:
                    break
            assert pages is not None or seen == total, (seen, total)
            return elapsed

        def sync_rest(pages: int | None = None) -> float:
            elapsed, page, seen = 0.0, 1, 0
            while True:
                body, ms = server.get(f"/api/v1/tracks?page_size={PAGE}&page={page}",
                                      {"Authorization": f"Bearer {token}"})  # fmt: skip
                elapsed += ms
                answer = json.loads(body)
                seen += len(answer["results"])
                page += 1
                if not answer["next"] or page - 1 == pages:
                    break
            assert pages is not None or seen == total, (seen, total)
            return elapsed

        # Warm-up (connections, prepared statements, caches): whole syncs of a small library, two pages of a
        # big one (a REST sync of 100 000 songs pages by OFFSET: minutes under load).
        warm_pages = None if args.songs <= 10_000 else 2
        sync_subsonic(warm_pages), sync_rest(warm_pages)
        subsonic_ms, rest_ms = [], []
        for _ in range(repeats):  # interleaved: a shared machine's load drifts
            subsonic_ms.append(sync_subsonic())
            print(f"  sync by search3: {subsonic_ms[-1]:.0f} ms", flush=True)
            rest_ms.append(sync_rest())
            print(f"  sync by the REST list: {rest_ms[-1]:.0f} ms", flush=True)
        album_list = f"/rest/getAlbumList2?{urlencode({**auth, 'type': 'newest', 'size': 50})}"
        stream_64 = f"/rest/stream?{urlencode({**auth, 'id': f'tr-{tone.pk}', 'maxBitRate': 64})}"
        stream_raw = f"/rest/stream?{urlencode({**auth, 'id': f'tr-{tone.pk}', 'format': 'raw'})}"
        cover = f"/rest/getCoverArt?{urlencode({**auth, 'id': f'al-{tone.album_id}', 'size': 300})}"
        for path in (album_list, stream_64, stream_raw, cover):
            server.get(path, first_byte=True)
        albums = [server.get(album_list)[1] for _ in range(args.calls)]
        first_64 = [server.get(stream_64, first_byte=True)[1] for _ in range(args.calls // 2)]
        first_raw = [server.get(stream_raw, first_byte=True)[1] for _ in range(args.calls // 2)]
        covers = [server.get(cover)[1] for _ in range(args.calls // 2)]
    finally:
        if server is not None:
            server.stop()
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(_TMP, ignore_errors=True)

    subsonic, rest = statistics.median(subsonic_ms), statistics.median(rest_ms)
    ratio = rest / subsonic
    workers = os.environ.get("WEB_CONCURRENCY") or min(2 * (os.cpu_count() or 1) + 1, 8)
    print(f"subsonic benchmark: {total} songs, {args.songs // 10} albums; gunicorn {workers} workers, "
          f"{os.cpu_count()} CPUs; one sequential client, auth u+t+s (app password); x{repeats}")  # fmt: skip
    pages = -(-total // PAGE)
    per_song_us = subsonic / total * 1000
    target_ms = NAVIDROME_US_PER_SONG * total / 1000
    print(f"  (a) full sync, search3 ''  x{PAGE}: {subsonic:8.1f} ms  ({pages} pages, {per_song_us:.0f} us/song; "
          f"target <= {target_ms:.0f} ms, Navidrome's {NAVIDROME_US_PER_SONG:.0f} us/song)")  # fmt: skip
    print(f"  (b) REST /tracks pages     x{PAGE}: {rest:8.1f} ms  (ceiling)")
    print(f"      a/b throughput = {ratio:.2f} (target >= 0.8)")
    album_p50 = statistics.median(albums)
    print(f"  (c) getAlbumList2 newest 50: p50 {album_p50:.1f} ms, p90 {sorted(albums)[int(0.9 * len(albums))]:.1f} ms"
          "  (target <= 8 ms)")  # fmt: skip
    print(f"  (d) stream first byte: ready rendition (maxBitRate=64) p50 {statistics.median(first_64):.1f} ms, "
          f"original (format=raw) p50 {statistics.median(first_raw):.1f} ms  (target <= 5 ms)")  # fmt: skip
    print(f"  (e) getCoverArt size=300: p50 {statistics.median(covers):.1f} ms  (target <= 8 ms)")
    print(f"      load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0 if ratio >= 0.8 and subsonic <= target_ms else 1


if __name__ == "__main__":
    raise SystemExit(main())
