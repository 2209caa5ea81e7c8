"""Footprint benchmark: the memory of the whole stack of `make run`, in the default and the small profile.

    make bench-footprint                       # both profiles, 24 one-minute tracks
    make bench-footprint BENCH_PROFILES=small BENCH_TRACKS=48

For each profile (REVENGE_PROFILE), starts `python -m revenge.launcher run` as `make run` does, on a data
folder of its own and with nothing else: its embedded PostgreSQL and Redis are started by it and counted.
Then sums the memory of every process of the stack (the launcher and everything under it, Redis included,
and the PostgreSQL postmaster with its backends):
(a) idle, 20 s after it answers /healthz;
(b) the peak while a library of BENCH_TRACKS generated FLAC tracks is scanned (the pre-transcodes it queues
    start meanwhile) and one track is played: the stream decision, the master playlist until it is ready,
    its variant playlist and segments, a progress PUT a second, for BENCH_PLAY_SECONDS;
(c) at the end of that playback.
RSS summed over the processes is the issue's figure (#22: small profile <= 400 MB with PostgreSQL and
Redis, after a scan and while playing); it counts the pages that processes share (the interpreter and
libraries of forked workers, PostgreSQL's shared buffers) once per process, so PSS (each shared page
divided among its users, from /proc/<pid>/smaps_rollup) is printed too: what the stack takes from the
machine. The ffmpeg processes of a transcode are counted while they run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

# ruff: noqa: T201 - a benchmark prints its figures

import imageio_ffmpeg  # noqa: E402

from bench.cpu import process_tree  # noqa: E402
from bench.load import free_port  # noqa: E402
from revenge import embedded  # noqa: E402

TARGET_SMALL_MB = 400
TRACK_SECONDS = 60


def memory_kb(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) of a process in kB (None: it is gone or not ours to read)."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values = {}
    for line in rollup.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


# The first needle found in a command line names the process (Procfile.small's one worker takes
# "transcode.interactive," first in its -Q; the default Procfile's second worker takes it alone).
NAMES = (
    ("gunicorn", "gunicorn"), (" beat", "celery beat"), ("transcode.interactive,", "celery worker"),
    ("transcode.interactive", "celery interactive"), ("celery", "celery worker"), ("revenge.launcher", "launcher"),
    ("redis", "redis"), ("ffmpeg", "ffmpeg"), ("postgres", "postgresql"),
)  # fmt: skip


def process_name(pid: int) -> str:
    try:
        args = [arg.decode(errors="replace") for arg in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        return "?"
    line = " ".join(args)
    for needle, name in NAMES:
        if needle in line:
            return name
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass
class Sample:
    rss_kb: int = 0
    pss_kb: int = 0
    processes: int = 0
    by_name: Counter[str] = field(default_factory=Counter)

    @property
    def rss_mb(self) -> float:
        return self.rss_kb / 1024

    @property
    def pss_mb(self) -> float:
        return self.pss_kb / 1024


class Stack:
    def __init__(self, profile: str, music: Path) -> None:
        self.profile = profile
        self.data_dir = Path(tempfile.mkdtemp(prefix=f"revenge-bench-footprint-{profile}-"))
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.music = music
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CELERY_", "WEB_CONCURRENCY", "GUNICORN_"))
            and key not in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "RENDITIONS_ROOT")
        }
        self.env = {
            **env,
            "REVENGE_PROFILE": profile,
            "REVENGE_DATA_DIR": str(self.data_dir),
            "PORT": str(self.port),
            "REVENGE_ADMIN_USER": "admin",
            "REVENGE_ADMIN_PASSWORD": self.password,
        }
        self.log = (self.data_dir / "stack.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "revenge.launcher", "run"], cwd=BASE_DIR, env=self.env,
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while self.request("GET", "/healthz")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"the {profile} stack did not start; see its log above")
            time.sleep(0.5)
        self.token = ""

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if getattr(self, "token", ""):
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        except OSError:
            return 0, b""

    def json(self, method: str, path: str, body: dict | None = None, expect: tuple[int, ...] = (200,)) -> dict:
        status, content = self.request(method, path, body)
        if status not in expect:
            raise SystemExit(f"{method} {path}: {status} {content[:300]!r}")
        return json.loads(content)

    def pids(self) -> list[int]:
        pids = process_tree(self.process.pid)
        try:
            postmaster = int((embedded.pgdata_dir(self.data_dir) / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return pids
        return pids + process_tree(postmaster)

    def sample(self) -> Sample:
        sample = Sample()
        for pid in self.pids():
            found = memory_kb(pid)
            if found is None:
                continue
            sample.rss_kb += found[0]
            sample.pss_kb += found[1]
            sample.processes += 1
            sample.by_name[process_name(pid)] += found[0]
        return sample

    def manage_shell(self, code: str) -> str:
        env = {**self.env, "DATABASE_URL": embedded.database_url(self.data_dir),
               "REDIS_URL": embedded.redis_url(self.data_dir)}  # fmt: skip
        done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def generate_music(folder: Path, tracks: int) -> None:
    """FLAC tracks with tags, in albums of 12: distinct noise, so that no two are the same file."""
    ffmpeg = os.environ.get("FFMPEG_BINARY") or imageio_ffmpeg.get_ffmpeg_exe()
    for number in range(tracks):
        album = folder / f"Album {number // 12 + 1}"
        album.mkdir(parents=True, exist_ok=True)
        graph = (f"sine=frequency={220 + 20 * number}:duration={TRACK_SECONDS}:sample_rate=44100[a];"
                 f"anoisesrc=color=pink:amplitude=0.05:seed={number}:duration={TRACK_SECONDS}:sample_rate=44100[b];"
                 "[a][b]amix=inputs=2,pan=stereo|c0=c0|c1=c0[out]")  # fmt: skip
        subprocess.run(
            [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-filter_complex", graph, "-map", "[out]",
             "-metadata", f"title=Track {number + 1}", "-metadata", f"album=Album {number // 12 + 1}",
             "-metadata", "artist=Bench", "-metadata", f"track={number % 12 + 1}", "-c:a", "flac",
             str(album / f"{number % 12 + 1:02d}.flac")],
            check=True,
        )  # fmt: skip


def exercise(stack: Stack, play_seconds: float) -> tuple[Sample, Sample, float, float]:
    """Scan, then play one track; returns (peak by RSS, the sample at the end, scan seconds, first-audio s)."""
    peak = Sample()

    def watch() -> Sample:
        nonlocal peak
        sample = stack.sample()
        if sample.rss_kb > peak.rss_kb:
            peak = sample
        return sample

    library_id = stack.manage_shell(
        "from apps.library.models import Library, LibraryKind; "
        f"print(Library.objects.create(name='bench', kind=LibraryKind.MUSIC, root_paths=[{str(stack.music)!r}]).pk)"
    )
    stack.token = stack.json("POST", "/api/v1/auth/token", {"username": "admin", "password": stack.password},
                             expect=(200, 201))["token"]  # fmt: skip
    started = time.monotonic()
    job = stack.json("POST", f"/api/v1/libraries/{library_id}/scan", expect=(202,))
    while job["status"] in ("queued", "running"):
        watch()
        time.sleep(0.5)
        job = stack.json("GET", f"/api/v1/scans/{job['id']}")
        if time.monotonic() - started > 600:
            raise SystemExit("the scan did not finish within 10 minutes")
    scan_s = time.monotonic() - started
    if job["status"] != "succeeded" or not job["added"]:
        raise SystemExit(f"scan: {job}")
    track_id = stack.json("GET", "/api/v1/tracks")["results"][-1]["id"]
    started = time.monotonic()
    url = stack.json("GET", f"/api/v1/tracks/{track_id}/stream?codecs=aac")["url"]
    while True:
        status, master = stack.request("GET", url)
        if status == 200:
            break
        if status != 202 or time.monotonic() - started > 120:
            raise SystemExit(f"master playlist: {status} {master[:300]!r}")
        watch()
        time.sleep(0.1)
    variant = next(line for line in master.decode().splitlines() if line and not line.startswith("#"))
    status, media = stack.request("GET", variant)
    segments = [line for line in media.decode().splitlines() if line and not line.startswith("#")]
    folder = variant.rsplit("/", 1)[0]
    first_audio_s = None
    played_until = time.monotonic() + play_seconds
    position_ms = 0
    for segment in segments:
        status, content = stack.request("GET", f"{folder}/{segment}")
        if status != 200 or not content:
            raise SystemExit(f"segment {segment}: {status}")
        if first_audio_s is None:
            first_audio_s = time.monotonic() - started
        position_ms += 1000
        stack.json("PUT", f"/api/v1/progress/{track_id}", {"position_ms": position_ms, "device_id": "bench"})
        watch()
        if time.monotonic() >= played_until:
            break
        time.sleep(1)
    while time.monotonic() < played_until:  # the track was shorter than the playback: keep reporting
        position_ms += 1000
        stack.json("PUT", f"/api/v1/progress/{track_id}", {"position_ms": position_ms, "device_id": "bench"})
        watch()
        time.sleep(1)
    return peak, watch(), scan_s, first_audio_s or 0.0


def describe(sample: Sample) -> str:
    return f"RSS {sample.rss_mb:6.0f} MB   PSS {sample.pss_mb:6.0f} MB   {sample.processes:3} processes"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", default=os.environ.get("BENCH_PROFILES", "default,small"))
    parser.add_argument("--tracks", type=int, default=int(os.environ.get("BENCH_TRACKS", "24")))
    parser.add_argument("--settle", type=float, default=float(os.environ.get("BENCH_SETTLE", "20")))
    parser.add_argument("--play-seconds", type=float, default=float(os.environ.get("BENCH_PLAY_SECONDS", "20")))
    args = parser.parse_args()
    profiles = [name.strip() for name in args.profiles.split(",") if name.strip()]
    music = Path(tempfile.mkdtemp(prefix="revenge-bench-footprint-music-"))
    results = {}
    try:
        generate_music(music, args.tracks)
        for profile in profiles:
            stack = Stack(profile, music)
            try:
                time.sleep(args.settle)
                idle = stack.sample()
                peak, end, scan_s, first_audio_s = exercise(stack, args.play_seconds)
                results[profile] = (idle, peak, end, scan_s, first_audio_s)
            except BaseException:
                print(Path(stack.data_dir / "stack.log").read_text()[-4000:])
                raise
            finally:
                stack.stop()
    finally:
        shutil.rmtree(music, ignore_errors=True)

    print(f"footprint benchmark: `make run` with its embedded PostgreSQL and Redis, {args.tracks} tracks of "
          f"{TRACK_SECONDS} s scanned, one played for {args.play_seconds:.0f} s; {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    for profile, (idle, peak, end, scan_s, first_audio_s) in results.items():
        print(f"  {profile}:")
        print(f"    (a) idle                       {describe(idle)}")
        print(f"    (b) peak, scan + playback      {describe(peak)}   (scan {scan_s:.1f} s, "
              f"first audio {first_audio_s:.1f} s)")  # fmt: skip
        print(f"    (c) while playing, at the end  {describe(end)}")
        parts = "  ".join(f"{name} {kb / 1024:.0f}" for name, kb in peak.by_name.most_common())
        print(f"        peak RSS by process, MB: {parts}")
    ok = True
    if "small" in results:
        worst = max(sample.rss_mb for sample in results["small"][1:3])
        ok = worst <= TARGET_SMALL_MB
        print(f"  small profile, scan + playback: {worst:.0f} MB RSS, target <= {TARGET_SMALL_MB} MB   "
              f"{worst / TARGET_SMALL_MB:.2f}x the target")  # fmt: skip
    if "default" in results and "small" in results:
        print(f"  small / default, peak RSS: {results['small'][1].rss_mb / results['default'][1].rss_mb:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
