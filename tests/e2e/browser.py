"""Helpers for the browser tests: a live Django server in a thread, Debian's Chromium through Playwright,
a watch on each page (Content-Security-Policy violations, script and console errors, the network log),
screenshots into the test output folder, and the generated library the web player is tested against. The
fixtures that use them (`browser`, `watch`, `open_page`) are in tests/e2e/conftest.py.

Never `playwright install`: the tests drive /usr/bin/chromium (`apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model
from django.test import override_settings
from django.test.testcases import LiveServerThread
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Request, Response

from apps.library.models import Library

CHROMIUM = "/usr/bin/chromium"
# CI (.ci/run) installs Chromium and sets REVENGE_REQUIRE_SYSTEM_TOOLS: there, a missing browser fails.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("REVENGE_REQUIRE_SYSTEM_TOOLS"),
    reason="needs Debian's chromium (apt-get install -y chromium)",
)
# The test output folder (gitignored; CI keeps it as an artifact): REVENGE_TEST_OUTPUT, else test-output/.
TEST_OUTPUT = Path(os.environ.get("REVENGE_TEST_OUTPUT") or Path(__file__).resolve().parents[2] / "test-output")
SCREENSHOTS = TEST_OUTPUT / "screenshots"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "correct horse battery staple"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}

# Runs in every page before its own scripts (through the DevTools protocol, so the page's CSP does not
# apply to it): violations of the policy become console errors the watch below collects.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile || "?"}:${event.lineNumber || 0}`);
});
"""


class LiveServer:
    """Django in a thread on a free port (what pytest-django's `live_server` does, but usable for a whole
    module: its fixture would wrap every test in `transactional_db`, emptying the tables after each one,
    and the library with its renditions is built once per module)."""

    def __init__(self) -> None:
        self.thread = LiveServerThread("127.0.0.1", StaticFilesHandler)
        self.thread.daemon = True

    def start(self) -> None:
        self.thread.start()
        self.thread.is_ready.wait()
        if self.thread.error:
            raise self.thread.error

    def stop(self) -> None:
        if self.thread.ident is not None:  # started (a module whose library failed to build never starts it)
            self.thread.terminate()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.thread.port}"


Built = TypeVar("Built")


@contextmanager
def live_site(
    django_db_blocker: Any,
    root: Path,
    build: Callable[[], Built],
    *,
    usernames: Sequence[str],
    also_delete: Sequence[type[Model]] = (),
    **overrides: Any,
) -> Iterator[tuple[str, Built]]:
    """A browser test module's site, served for the whole module: under the module's settings (`overrides`
    on top of the defaults below), `build()` makes its libraries and users with database access, then a
    LiveServer serves them; yields (base URL, what `build` returned). At the end the server stops, and the
    users named, every library (with its tracks), every session and every row of `also_delete` go: a
    module-wide fixture runs outside the tests' transactions, so what it made is not rolled back."""
    # Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls from a thread with
    # a running loop; ours are plain blocking calls between browser steps.
    async_unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    (root / "static").mkdir(parents=True, exist_ok=True)
    module_settings = override_settings(
        **{
            "STATIC_ROOT": root / "static",
            "TRANSCODE_AFTER_SCAN": False,
            # As tests/conftest.py sets for each test (which runs after a module-wide fixture): renditions built
            # for the module must have the keys the tests' requests compute.
            "STREAMING_LADDER": "full",
            # Sign-ins in every test: Django's deliberately slow hasher would be most of their time.
            "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
            **overrides,
        }
    )
    module_settings.enable()
    # The server's threads close their database connection after each request (instead of keeping it for a
    # minute), so none is left open when the test database is dropped.
    database = connections[DEFAULT_DB_ALIAS].settings_dict
    conn_max_age = database["CONN_MAX_AGE"]
    database["CONN_MAX_AGE"] = 0
    server = LiveServer()
    try:
        with django_db_blocker.unblock():
            built = build()
        server.start()
        yield server.url, built
    finally:
        server.stop()
        with django_db_blocker.unblock():
            for model in also_delete:
                model.objects.all().delete()
            get_user_model().objects.filter(username__in=usernames).delete()
            Library.objects.all().delete()
            Session.objects.all().delete()
        module_settings.disable()
        database["CONN_MAX_AGE"] = conn_max_age
        if async_unsafe is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@dataclass
class NetworkEntry:
    method: str
    url: str
    status: int
    range: str | None


@dataclass
class PageWatch:
    """What every page of a test did: CSP violations, uncaught script errors and console errors (a request
    answered 4xx/5xx, such as a missing favicon, is a console error in Chromium) all fail the test at its
    end, unless the test said it provokes that one on purpose (`expect_error`); and every response."""

    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    network: list[NetworkEntry] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.page_errors.append(f"{error} (page {page.url})"))
        page.on("response", self._response)
        return page

    def expect_error(self, pattern: str) -> None:
        """A console error the test causes and checks itself (a 409 from the server, a 404 page): matched
        by `re.search` against "<text> (<resource URL>, page <page URL>)"."""
        self.expected.append(re.compile(pattern))

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        text = message.text
        if "CSP violation" in text or "Content Security Policy" in text:
            self.csp_violations.append(f"{text} (page {page.url})")
        elif message.type == "error":
            self.console_errors.append(f"{text} ({message.location.get('url') or '?'}, page {page.url})")

    def _response(self, response: Response) -> None:
        request: Request = response.request
        self.network.append(NetworkEntry(request.method, response.url, response.status, request.headers.get("range")))

    def urls(self, fragment: str) -> list[NetworkEntry]:
        return [entry for entry in self.network if fragment in entry.url]

    def unexpected_console_errors(self) -> list[str]:
        return [error for error in self.console_errors if not any(p.search(error) for p in self.expected)]

    def assert_clean(self) -> None:
        assert not self.csp_violations, f"Content-Security-Policy violations: {self.csp_violations}"
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"
        unexpected = self.unexpected_console_errors()
        assert not unexpected, f"errors in the browser console: {unexpected}"


def screenshot(page: Page, name: str) -> Path:
    """Saves what the page shows under the test output folder, which CI keeps as an artifact (never into
    docs/: the README's screenshots are committed images, and a test run leaves the checkout clean)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"
    page.screenshot(path=str(path))
    return path


def new_page(context: BrowserContext, watch: PageWatch) -> Page:
    """The first page of a new context; it and every page the context opens later (a link to a new tab)
    are watched."""
    context.add_init_script(CSP_REPORTER)
    context.set_default_timeout(30_000)
    context.on("page", watch.attach)
    return context.new_page()


def sign_in(page: Page, base_url: str, username: str, next_path: str = "/") -> None:
    page.goto(f"{base_url}/login/?next={next_path}")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}{next_path}")
    page.wait_for_function("() => window.revengePlayer !== undefined")


def audio_time(page: Page) -> float:
    return page.evaluate("() => document.querySelector('[data-audio]').currentTime")


def wait_playing_past(page: Page, seconds: float, timeout_ms: int = 30_000) -> None:
    page.wait_for_function(
        "(s) => { const a = document.querySelector('[data-audio]'); return !a.paused && a.currentTime > s; }",
        arg=seconds,
        timeout=timeout_ms,
    )


def api_json(page: Page, base_url: str, path: str) -> dict:
    response = page.request.get(f"{base_url}{path}")
    assert response.ok, (path, response.status, response.text())
    return response.json()


# --- The generated library ------------------------------------------------------------------------------


def ffmpeg(*args: str) -> None:
    command = [settings.FFMPEG_BINARY, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run(command, check=True, timeout=120)


def lossless_noise(path: Path, *, seconds: float, title: str, artist: str, album: str, number: int) -> Path:
    """A FLAC of pink noise under a tone: ~1 Mbit/s, far over what the player asks for by default (320
    kbit/s), so the stream decision is HLS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.25:sample_rate=44100:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=44100:duration={seconds}",
        "-filter_complex", "amix=inputs=2:duration=shortest", "-ac", "2", "-c:a", "flac",
        "-metadata", f"title={title}", "-metadata", f"artist={artist}", "-metadata", f"album_artist={artist}",
        "-metadata", f"album={album}", "-metadata", f"track={number}", "-metadata", "genre=Noise",
        "-metadata", "date=2024", str(path),
    )  # fmt: skip
    return path


def mp3_tone(path: Path, *, seconds: int, kbps: int, title: str, artist: str, album: str, number: int = 1) -> Path:
    """A long constant-bitrate MP3, made fast: ten seconds encoded once, then repeated by stream copy."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = path.with_name(f".chunk-{path.stem}.mp3")
    ffmpeg(
        "-f", "lavfi", "-i", "sine=frequency=523:sample_rate=44100:duration=10", "-ac", "2",
        "-c:a", "libmp3lame", "-b:a", f"{kbps}k", str(chunk),
    )  # fmt: skip
    ffmpeg(
        "-stream_loop", str(seconds // 10 - 1), "-i", str(chunk), "-c", "copy", "-id3v2_version", "3",
        "-metadata", f"title={title}", "-metadata", f"artist={artist}", "-metadata", f"album_artist={artist}",
        "-metadata", f"album={album}", "-metadata", f"track={number}", "-metadata", "genre=Tones", str(path),
    )  # fmt: skip
    chunk.unlink()
    return path
