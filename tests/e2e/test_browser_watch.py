"""The watch every browser test relies on: it must see what a person would see in the console."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, PageWatch, needs_chromium, new_page

pytestmark = needs_chromium

PAGE = b"""<!doctype html><html><head><title>t</title><link rel="icon" href="/favicon.ico"></head>
<body><p>Hello</p><a href="/" target="_blank">again</a></body></html>"""


class Site(BaseHTTPRequestHandler):
    """A page naming an icon the site does not have."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        found = self.path == "/"
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(PAGE if found else b"not here")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_a_missing_favicon_and_errors_in_a_new_tab_fail_the_watch(site):
    watch = PageWatch()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=False)
        try:
            page = new_page(browser.new_context(), watch)
            page.goto(site + "/")
            with page.context.expect_page() as opened:
                page.get_by_role("link", name="again").click()
            tab = opened.value
            tab.wait_for_load_state()
            tab.evaluate("() => console.error('broken in the new tab')")
            for _ in range(100):  # until both have been reported (console events arrive on their own)
                seen = " ".join(watch.console_errors)
                if "favicon.ico" in seen and "new tab" in seen:
                    break
                page.wait_for_timeout(50)
        finally:
            browser.close()

    with pytest.raises(AssertionError, match="favicon.ico"):
        watch.assert_clean()
    assert any("broken in the new tab" in error for error in watch.console_errors), watch.console_errors

    # A test that provokes these on purpose says so, and only those pass.
    watch.expect_error(r"status of 404 \(Not Found\) \(http://[^ ]+/favicon\.ico,")
    with pytest.raises(AssertionError, match="broken in the new tab"):
        watch.assert_clean()
    watch.expect_error("broken in the new tab")
    watch.assert_clean()
