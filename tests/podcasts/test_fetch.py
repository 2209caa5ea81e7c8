"""apps.podcasts.fetch against a real local HTTP server."""

from __future__ import annotations

import pytest

from apps.podcasts.fetch import USER_AGENT, FetchClient, FetchError, FetchRefused, TooLarge, address_refused
from tests.podcasts.server import Route


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "127.0.0.1 is not a public address"),
        ("::1", "::1 is not a public address"),
        ("10.1.2.3", "10.1.2.3 is not a public address"),
        ("172.16.0.1", "172.16.0.1 is not a public address"),
        ("192.168.1.10", "192.168.1.10 is not a public address"),
        ("100.64.0.1", "100.64.0.1 is not a public address"),
        ("fe80::1", "fe80::1 is not a public address"),
        ("::ffff:127.0.0.1", "127.0.0.1 is not a public address"),
        ("0.0.0.0", "0.0.0.0 is not a public address"),
        ("224.0.0.1", "224.0.0.1 is not a public address"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address"),
        ("93.184.215.14", None),
        ("2606:4700::6810:84e5", None),
    ],
)
def test_addresses_by_default(address, refused):
    assert address_refused(address, allow_private=False) == refused


def test_allowing_private_hosts_still_refuses_metadata_addresses():
    assert address_refused("127.0.0.1", allow_private=True) is None
    assert address_refused("10.0.0.1", allow_private=True) is None
    assert address_refused("169.254.169.254", allow_private=True) == "169.254.169.254 is a cloud metadata address"


def test_the_default_refuses_loopback_and_a_redirect_to_the_metadata_address(feed_server):
    feed_server.routes["/feed"] = Route(body=b"<rss/>")
    feed_server.routes["/moved"] = Route(status=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    default = FetchClient(allow_private=False, timeout_s=2)
    with pytest.raises(FetchRefused) as caught, default.open(feed_server.url("/feed")):
        pass
    assert str(caught.value) == "refused 127.0.0.1: 127.0.0.1 is not a public address"
    with (
        pytest.raises(FetchRefused) as caught,
        default.open(feed_server.url("/feed").replace("127.0.0.1", "localhost")),
    ):
        pass
    assert "is not a public address" in str(caught.value)
    assert feed_server.hits == []  # nothing was sent to the server
    # Even where private hosts are allowed (tests, home networks), a hop to a metadata address is refused.
    lenient = FetchClient(allow_private=True, timeout_s=2)
    with pytest.raises(FetchRefused) as caught, lenient.open(feed_server.url("/moved")):
        pass
    assert str(caught.value) == "refused 169.254.169.254: 169.254.169.254 is a cloud metadata address"
    assert feed_server.paths_hit() == ["/moved"]


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://h/", "http:///nohost"])
def test_only_http_and_https(url):
    with pytest.raises(FetchRefused), FetchClient(allow_private=True, timeout_s=2).open(url):
        pass


def test_redirects_are_followed_and_a_permanent_move_is_reported(feed_server):
    feed_server.routes["/old"] = Route(status=301, headers={"Location": "/new"})
    feed_server.routes["/new"] = Route(status=308, headers={"Location": feed_server.url("/final")})
    feed_server.routes["/temp"] = Route(status=302, headers={"Location": "/final"})
    feed_server.routes["/final"] = Route(body=b"hello")
    client = FetchClient(allow_private=True, timeout_s=2)
    with client.open(feed_server.url("/old")) as response:
        assert (response.status, response.read(max_bytes=100)) == (200, b"hello")
        assert response.permanent_url == feed_server.url("/final")
    with client.open(feed_server.url("/temp")) as response:
        assert (response.url, response.permanent_url) == (feed_server.url("/final"), "")
    assert feed_server.hits[0].headers["user-agent"] == USER_AGENT
    feed_server.routes["/loop"] = Route(status=302, headers={"Location": "/loop"})
    with pytest.raises(FetchError) as caught, client.open(feed_server.url("/loop")):
        pass
    assert str(caught.value) == "more than 5 redirects"


def test_size_cap_declared_and_streamed(feed_server):
    def hundred_mb():
        for _ in range(100):
            yield b"x" * (1024 * 1024)

    feed_server.routes["/declared"] = Route(body=b"y" * 5000)
    feed_server.routes["/endless"] = Route(body=hundred_mb)
    client = FetchClient(allow_private=True, timeout_s=2)
    with pytest.raises(TooLarge) as caught, client.open(feed_server.url("/declared")) as response:
        response.read(max_bytes=4096)
    assert str(caught.value) == "too large: 5000 bytes declared, the limit is 4096"
    with pytest.raises(TooLarge) as caught, client.open(feed_server.url("/endless")) as response:
        response.read(max_bytes=1024 * 1024)
    assert str(caught.value) == "too large: more than 1048576 bytes"


def test_a_stalling_server_times_out(feed_server):
    # 1.5 s: a shorter timeout fails the headers too on a loaded 2-CPU machine.
    feed_server.routes["/slow-headers"] = Route(body=b"x", stall_before_headers_s=5)
    feed_server.routes["/slow-body"] = Route(body=b"x" * 1000, stall_after_bytes=10, stall_s=5)
    client = FetchClient(allow_private=True, timeout_s=1.5)
    with pytest.raises(FetchError) as caught, client.open(feed_server.url("/slow-headers")):
        pass
    assert str(caught.value) == f"timed out after 1.5 s: {feed_server.url('/slow-headers')}"
    with pytest.raises(FetchError) as caught, client.open(feed_server.url("/slow-body")) as response:
        response.read(max_bytes=10_000)
    assert str(caught.value) == "stalled: no data for 1.5 s"


def test_nothing_listening(feed_server):
    url = feed_server.url("/x")
    feed_server.close()
    with pytest.raises(FetchError) as caught, FetchClient(allow_private=True, timeout_s=1).open(url):
        pass
    assert str(caught.value).startswith("cannot connect to 127.0.0.1")
