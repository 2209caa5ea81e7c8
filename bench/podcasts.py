"""Podcasts benchmark: feed refreshes and an episode download against ceilings measured in the same run.

    make bench-podcasts              # 500 subscriptions x 300 episodes (BENCH_FEEDS, BENCH_EPISODES)

A local HTTP server (another process: it does not share this one's GIL) serves every feed from memory,
with ETags; a "bump" makes every feed change (one more episode on top).
(a) a bare loop of the same 500 conditional GETs with the same client (apps.podcasts.fetch) answered 304,
(b) subscription_refresh of the 500 subscriptions, all unchanged (one 304 each, plus the row's update);
(c) a bare loop of the same 500 GETs answered 200 with the whole feed read,
(d) subscription_refresh of the 500, all changed (fetch, defusedxml gate, feedparser, episodes upsert).
(e) curl downloading a 60-minute 128 kbit/s MP3 from the same server, (f) episode_download of it (fetch
into the part file, mutagen check, rename, targeted scan). Targets: a/b >= 0.7, c/d >= 0.7, e/f >= 0.8.
The database is a throw-away one (created and dropped here), never the server's.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.etree import ElementTree

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

import feedparser  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.library.models import Library, LibraryKind  # noqa: E402
from apps.podcasts.feeds import feed_parse  # noqa: E402
from apps.podcasts.fetch import client  # noqa: E402
from apps.podcasts.models import EpisodeState, FeedEpisode, Subscription  # noqa: E402
from apps.podcasts.services import dispatch  # noqa: E402
from apps.podcasts.services.downloads import episode_download  # noqa: E402
from apps.podcasts.services.subscriptions import REFRESH_BATCH, subscriptions_refresh  # noqa: E402


def feed_xml(feed: int, episodes: int, generation: int) -> bytes:
    """An RSS 2.0 + iTunes feed (what feedgen writes, built by string for speed: 150 000 items)."""
    items = []
    for n in range(episodes + generation, generation, -1):
        day = 1 + n % 28
        items.append(
            f"<item><title>Episode {n} of show {feed}</title><description>&lt;p&gt;Notes for episode {n}, with a "
            f'&lt;a href="https://example.org/{feed}/{n}"&gt;link&lt;/a&gt;.&lt;/p&gt;</description>'
            f'<guid isPermaLink="false">show-{feed}-ep-{n}</guid>'
            f'<enclosure url="https://cdn.example.org/{feed}/{n}.mp3" length="{1000 + n}" type="audio/mpeg"/>'
            f"<pubDate>Mon, {day:02d} Jun 2025 08:{n % 60:02d}:00 +0000</pubDate>"
            f"<itunes:duration>{1800 + n}</itunes:duration><itunes:episode>{n}</itunes:episode></item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"><channel>'
        f"<title>Show {feed}</title><link>https://example.org/{feed}</link><description>Show {feed}</description>"
        f"<language>en</language><itunes:author>Host {feed}</itunes:author>{''.join(items)}</channel></rss>"
    ).encode()


def serve(port_queue: multiprocessing.Queue, feeds: int, episodes: int, audio_path: str) -> None:
    state = {"generation": 0}
    bodies: dict[tuple[int, int], bytes] = {}
    audio = Path(audio_path).read_bytes()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes: without this, Nagle + the client's delayed ACK add
            # 40 ms to every response (to the ceiling and the measure alike).
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/bump":
                state["generation"] += 1
                bodies.clear()
                return self._send(200, b"ok", "text/plain")
            if self.path == "/episode.mp3":
                return self._send(200, audio, "audio/mpeg")
            feed = int(self.path.rsplit("/", 1)[1].split(".")[0])
            generation = state["generation"]
            etag = f'"{feed}-{generation}"'
            if self.headers.get("If-None-Match") == etag:
                return self._send(304, b"", None, etag)
            key = (feed, generation)
            if key not in bodies:
                bodies[key] = feed_xml(feed, episodes, generation)
            return self._send(200, bodies[key], "application/rss+xml", etag)

        def _send(self, status: int, body: bytes, content_type: str | None, etag: str | None = None) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port_queue.put(httpd.server_address[1])
    httpd.serve_forever()


class Timing:
    """Best wall and best CPU time (this process's: the server runs in another) of several runs."""

    def __init__(self) -> None:
        self.wall_s = self.cpu_s = float("inf")

    def __enter__(self) -> Timing:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = min(self.wall_s, time.perf_counter() - self._wall)
        self.cpu_s = min(self.cpu_s, time.process_time() - self._cpu)


def bare_loop(urls: list[str], etags: dict[str, str] | None, timing: Timing) -> None:
    fetch = client()
    with timing:
        for url in urls:
            headers = {"If-None-Match": etags[url]} if etags else {}
            with fetch.open(url, headers=headers) as response:
                response.read(max_bytes=settings.PODCAST_FEED_MAX_BYTES)


def refresh_all(ids: list[int], expect: str, timing: Timing) -> None:
    """What the workers do with beat's batches (subscriptions_refresh_task), one batch after the other."""
    with timing:
        for start in range(0, len(ids), REFRESH_BATCH):
            results = subscriptions_refresh(subscription_ids=ids[start : start + REFRESH_BATCH])
            assert {result.status for result in results.values()} == {expect}, results


def parsers(data: bytes) -> list[tuple[str, float]]:
    """CPU seconds to read one feed, best of five rounds: the floor under (d) whatever reads the items."""
    readers: list[tuple[str, Callable[[], object]]] = [
        ("C ElementTree parse alone (no item read)", lambda: ElementTree.fromstring(data)),
        ("feed_parse (C tree + items read in Python)", lambda: feed_parse(data)),
        ("feedparser.parse", lambda: feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)),
    ]
    try:
        import podcastparser  # type: ignore[import-not-found]  # not a dependency: measured when installed

        readers.append(("podcastparser.parse", lambda: podcastparser.parse("http://x/f", io.BytesIO(data))))
    except ImportError:
        pass
    figures = []
    for label, read in readers:
        rounds = 5 if "feedparser" not in label else 2
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            for _ in range(10):
                read()
            best = min(best, (time.process_time() - started) / 10)
        figures.append((label, best))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=int(os.environ.get("BENCH_FEEDS", "500")))
    parser.add_argument("--episodes", type=int, default=int(os.environ.get("BENCH_EPISODES", "300")))
    args = parser.parse_args()
    settings.PODCAST_ALLOW_PRIVATE_HOSTS = True  # the local server
    dispatch.QUEUE = f"bench-podcasts-{os.getpid()}"  # nothing is sent (auto-download is off), but never to a worker
    work = Path(tempfile.mkdtemp(prefix="revenge-bench-podcasts-"))
    audio = Path(settings.DATA_DIR) / "bench" / "podcast-60min-128k.mp3"
    if not audio.exists():
        audio.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [settings.FFMPEG_BINARY, "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
             "sine=frequency=440:duration=3600", "-ac", "2", "-c:a", "libmp3lame", "-b:a", "128k", str(audio)],
            check=True,
        )  # fmt: skip
    ports: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.get_context("fork").Process(
        target=serve, args=(ports, args.feeds, args.episodes, str(audio)), daemon=True
    )
    server.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        library = Library.objects.create(name="bench podcasts", kind=LibraryKind.PODCAST, root_paths=[str(work)])
        now = timezone.now()
        Subscription.objects.bulk_create(
            Subscription(library=library, feed_url=f"{base}/feeds/{n}.xml", auto_download="none", next_poll_at=now)
            for n in range(args.feeds)
        )
        subscriptions = list(Subscription.objects.filter(library=library).order_by("pk"))
        ids = [s.pk for s in subscriptions]
        urls = [s.feed_url for s in subscriptions]
        first = Timing()
        refresh_all(ids, "updated", first)  # every feed read and its episodes created
        episodes = FeedEpisode.objects.count()
        assert episodes == args.feeds * args.episodes, episodes
        etags = dict(Subscription.objects.values_list("feed_url", "etag"))

        # Ceiling and measure alternate, best of five each: the machine is shared and its load moves.
        bare_304, refresh_304, bare_200, refresh_200 = Timing(), Timing(), Timing(), Timing()
        for _ in range(5):
            bare_loop(urls, etags, bare_304)
            refresh_all(ids, "unchanged", refresh_304)
        for generation in range(1, 4):  # each time every feed has one more episode
            urllib.request.urlopen(f"{base}/bump").read()
            bare_loop(urls, None, Timing())  # (the server builds the new bodies here)
            bare_loop(urls, None, bare_200)
            refresh_all(ids, "updated", refresh_200)
            assert FeedEpisode.objects.count() == args.feeds * (args.episodes + generation)
        with client().open(urls[0]) as response:
            one_feed = response.read(max_bytes=settings.PODCAST_FEED_MAX_BYTES)
        readers = parsers(one_feed)

        # One episode: curl vs episode_download (best of five each).
        size = audio.stat().st_size
        curl_s = download_s = float("inf")
        subscription = subscriptions[0]
        for attempt in range(5):
            started = time.perf_counter()
            subprocess.run(["curl", "-s", "-o", str(work / "curl.mp3"), f"{base}/episode.mp3"], check=True)
            curl_s = min(curl_s, time.perf_counter() - started)
            assert (work / "curl.mp3").stat().st_size == size
            episode = FeedEpisode.objects.create(
                subscription=subscription, key=f"bench-{attempt}", title=f"Bench {attempt}", first_seen_at=now,
                enclosure_url=f"{base}/episode.mp3", state=EpisodeState.QUEUED,
            )  # fmt: skip
            started = time.perf_counter()
            result = episode_download(episode_id=episode.pk)
            download_s = min(download_s, time.perf_counter() - started)
            assert result.state == "downloaded", result
    finally:
        connection.creation.destroy_test_db(test_database, verbosity=0)
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)

    n = args.feeds
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"]

    def line(label: str, timing: Timing) -> None:
        print(
            f"  {label:<50} {timing.wall_s:8.3f} s wall {timing.wall_s / n * 1000:8.2f} ms/feed"
            f"   {timing.cpu_s / n * 1000:7.2f} ms/feed CPU"
        )

    print(f"podcasts benchmark: {n} subscriptions x {args.episodes} episodes, local HTTP server in another process")
    print(f"  load average {' '.join(load)}")
    line(f"first refresh of all (creates {episodes} episodes)", first)
    line(f"(a) bare loop, {n} conditional GETs -> 304", bare_304)
    line("(b) subscriptions_refresh, all unchanged (304)", refresh_304)
    line(f"(c) bare loop, {n} GETs -> 200, body read", bare_200)
    line("(d) subscriptions_refresh, all changed", refresh_200)
    print(f"  reading one {len(one_feed) / 1000:.0f} kB feed of {args.episodes + 3} episodes (CPU, best of rounds):")
    for label, seconds in readers:
        print(f"    {label:<48} {seconds * 1000:8.2f} ms")
    c_per_feed = bare_200.wall_s / n
    floor = readers[0][1]
    print(
        f"  ceiling for c/d if a refresh cost the GET and the C parse alone, nothing read, nothing written: "
        f"{c_per_feed / (c_per_feed + floor):.2f}"
    )
    print(f"  (e) curl, one {size / 1e6:.0f} MB episode {curl_s:8.3f} s ({size / curl_s / 1e6:.0f} MB/s)")
    print(f"  (f) episode_download of it {download_s:8.3f} s ({size / download_s / 1e6:.0f} MB/s)")
    unchanged, changed = bare_304.wall_s / refresh_304.wall_s, bare_200.wall_s / refresh_200.wall_s
    unchanged_cpu, changed_cpu = bare_304.cpu_s / refresh_304.cpu_s, bare_200.cpu_s / refresh_200.cpu_s
    download = curl_s / download_s
    print(
        f"  a/b = {unchanged:.2f} wall, {unchanged_cpu:.2f} CPU (target >= 0.7)   "
        f"c/d = {changed:.3f} wall, {changed_cpu:.3f} CPU (target >= 0.7)   e/f = {download:.2f} (>= 0.8)"
    )
    return 0 if unchanged >= 0.7 and changed >= 0.7 and download >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
