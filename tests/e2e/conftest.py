from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from django.db import connections
from playwright.sync_api import Browser as PlaywrightBrowser
from playwright.sync_api import Page, sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PageWatch, new_page, screenshot


@dataclass
class Browser:
    """A tiny cookie-keeping HTTP client for tests against a live server (urllib, no extra dependency)."""

    base_url: str
    jar: http.cookiejar.CookieJar = field(default_factory=http.cookiejar.CookieJar)

    def __post_init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, path: str, *, data: dict | None = None, headers: dict | None = None) -> tuple[int, str, str]:
        """Returns (status, final URL, body)."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base_url + path, data=body, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as response:
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.url, error.read().decode()

    def cookie(self, name: str) -> str:
        return next(cookie.value for cookie in self.jar if cookie.name == name)

    def admin_login(self, username: str, password: str) -> tuple[int, str, str]:
        _, _, page = self.request("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request(
            "/admin/login/?next=/admin/",
            data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"},
            headers={"Referer": self.base_url + "/admin/login/"},
        )


# --- Chromium (Playwright) -------------------------------------------------------------------------------------
# A module using these defines a module-scoped `world` fixture that serves the site (its `base_url`); the
# browser is opened after it and closed before it.


@pytest.fixture(scope="module")
def browser(world, django_db_blocker) -> Iterator[PlaywrightBrowser]:
    with sync_playwright() as playwright:
        # headless=False: "--headless=new" is in the arguments already (Chromium's own headless mode).
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=False)
        yield launched
        launched.close()
        # While Playwright's event loop is current, Django (asgiref) gives this thread other connection
        # objects than outside it: the ones the tests used are closed here, or the test database could
        # not be dropped at the end of the run ("being accessed by other users").
        with django_db_blocker.unblock():
            connections.close_all()


@pytest.fixture
def watch() -> Iterator[PageWatch]:
    """Watches every page `open_page` gives the test; at its end, any CSP violation, uncaught error or
    console error the test did not declare with `watch.expect_error` fails it."""
    watcher = PageWatch()
    yield watcher
    watcher.assert_clean()


@pytest.fixture
def open_page(browser, watch, request) -> Iterator[Callable[..., Page]]:
    """A page in a new browser context: a new device (its own localStorage, so its own device id). At the
    end of the test, each page's last state is saved as a screenshot (the test output folder, a CI
    artifact) and the watch is asserted clean."""
    contexts = []

    def make(viewport: dict[str, int] = DESKTOP, **options) -> Page:
        context = browser.new_context(viewport=viewport, **options)
        contexts.append(context)
        return new_page(context, watch)

    yield make
    for number, context in enumerate(contexts, start=1):
        # The player stores its last position and ends its session now, while this test's settings hold,
        # rather than in keepalive requests that could land during the next test.
        for tab, page in enumerate(context.pages, start=1):
            if not page.is_closed():
                screenshot(page, f"{request.node.name}-{number}" + (f"-{tab}" if tab > 1 else ""))
                page.evaluate("() => window.revengePlayer && window.revengePlayer.release()")
        context.close()
