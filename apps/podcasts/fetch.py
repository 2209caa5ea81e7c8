"""Fetching feeds and episodes from other people's servers, safely.

urllib3 (already pinned for other needs, no dependencies of its own): a PoolManager keeps connections
alive across the hundreds of feeds of one refresh run; redirects are followed here, not by urllib3, so
every hop's URL is checked (http/https only). Every connection resolves its host once, checks every
address it resolves to, and connects to a checked address itself (no second lookup that a rebinding DNS
could answer differently): loopback, private, link-local, shared, reserved and multicast addresses are
refused unless PODCAST_ALLOW_PRIVATE_HOSTS is on; cloud metadata addresses are refused always. Bodies
are read in chunks against a byte cap; a server that sends nothing for PODCAST_FETCH_TIMEOUT seconds fails
the fetch. No environment proxy is used (urllib3 reads none).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

USER_AGENT = "Revenge/1.0 (self-hosted audio server; podcast fetcher)"
MAX_REDIRECTS = 5
CHUNK_BYTES = 256 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
PERMANENT = frozenset({301, 308})
# Instance metadata services (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba): refused even when private
# hosts are allowed, since a feed URL is user input and these hand out credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


class FetchError(Exception):
    """The fetch failed; the message says why (shown in the admin and the API)."""


class FetchRefused(FetchError):
    """The URL or an address it leads to may not be fetched."""


class TooLarge(FetchError):
    pass


def address_refused(address: str, *, allow_private: bool) -> str | None:
    """Why this IP may not be connected to, or None."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if allow_private and not ip.is_multicast and not ip.is_unspecified:
        return None
    if not ip.is_global or ip.is_multicast:
        return f"{ip} is not a public address"
    return None


def url_check(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise FetchRefused(f"only http and https URLs are fetched, not {parts.scheme or 'this'}: {url[:200]}")
    if not parts.hostname:
        raise FetchRefused(f"no host in {url[:200]}")


class _CheckedConnectionMixin:
    allow_private = False
    _dns_host: str
    port: int
    timeout: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise FetchError(f"cannot resolve {self._dns_host}: {exc.strerror}") from None
        for *_, sockaddr in infos:
            reason = address_refused(str(sockaddr[0]), allow_private=self.allow_private)
            if reason:
                raise FetchRefused(f"refused {self._dns_host}: {reason}")
        error: OSError | None = None
        for family, type_, proto, _, sockaddr in infos:
            sock = socket.socket(family, type_, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise FetchError(f"cannot connect to {self._dns_host}: {error}")


class FetchClient:
    """One per process and setting (see `client()`): thread-safe, keeps connections alive."""

    def __init__(self, *, allow_private: bool, timeout_s: float, pools: int = 64):
        policy = {"allow_private": allow_private}
        http_conn = type("CheckedHTTPConnection", (_CheckedConnectionMixin, HTTPConnection), policy)
        https_conn = type("CheckedHTTPSConnection", (_CheckedConnectionMixin, HTTPSConnection), policy)
        http_pool = type("CheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("CheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
        self.timeout_s = timeout_s
        self.manager = urllib3.PoolManager(
            num_pools=pools,
            maxsize=4,
            headers={"User-Agent": USER_AGENT},
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
            retries=False,
        )
        self.manager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}

    @contextmanager
    def open(self, url: str, *, headers: dict[str, str] | None = None) -> Iterator[Response]:
        """GET `url`, following up to MAX_REDIRECTS redirects, each hop checked. The body is not read."""
        permanent = True
        for _hop in range(MAX_REDIRECTS + 1):
            url_check(url)
            raw = self._request(url, headers)
            location = raw.headers.get("Location")
            if raw.status in REDIRECTS and location:
                raw.drain_conn()
                raw.release_conn()
                permanent = permanent and raw.status in PERMANENT
                url = urljoin(url, location.strip())
                continue
            response = Response(raw, url, permanent_url=url if permanent and _hop else "", timeout_s=self.timeout_s)
            try:
                yield response
            finally:
                raw.release_conn() if response.consumed else raw.close()
            return
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _request(self, url: str, headers: dict[str, str] | None) -> urllib3.BaseHTTPResponse:
        try:
            return self.manager.request(
                "GET", url, headers={"User-Agent": USER_AGENT, **(headers or {})}, redirect=False,
                preload_content=False, retries=False,
            )  # fmt: skip
        except FetchError:
            raise
        except NewConnectionError as exc:  # (a subclass of urllib3's timeout error, for history's sake)
            raise FetchError(f"{_reason(exc)}: {url[:200]}") from None
        except Urllib3Timeout:
            raise FetchError(f"timed out after {self.timeout_s:g} s: {url[:200]}") from None
        except (Urllib3Error, OSError) as exc:
            raise FetchError(f"{_reason(exc)}: {url[:200]}") from None


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    if isinstance(inner, FetchError):
        return str(inner)
    return str(inner or exc)[:300]


@dataclass
class Response:
    raw: urllib3.BaseHTTPResponse
    url: str
    # The final URL when every redirect on the way was permanent (a feed that moved), else "".
    permanent_url: str
    timeout_s: float
    consumed: bool = False

    @property
    def status(self) -> int:
        return self.raw.status

    def header(self, name: str) -> str:
        return str(self.raw.headers.get(name, ""))

    def declared_length(self) -> int | None:
        try:
            return int(self.header("Content-Length"))
        except ValueError:
            return None

    def chunks(self, *, max_bytes: int, deadline_s: float | None = None) -> Iterator[bytes]:
        """The body in chunks; TooLarge past `max_bytes` (before reading, when the server says so);
        FetchError on a stall (no byte for the read timeout) or past `deadline_s` in total."""
        declared = self.declared_length()
        if declared is not None and declared > max_bytes:
            raise TooLarge(f"too large: {declared} bytes declared, the limit is {max_bytes}")
        started = time.monotonic()
        received = 0
        try:
            # read1, not stream(): it hands over what has arrived, so the bytes before a dropped connection
            # reach the caller (a resumable download keeps them) instead of vanishing in an IncompleteRead.
            while chunk := self.raw.read1(CHUNK_BYTES, decode_content=True):
                received += len(chunk)
                if received > max_bytes:
                    raise TooLarge(f"too large: more than {max_bytes} bytes")
                if deadline_s is not None and time.monotonic() - started > deadline_s:
                    raise FetchError(f"took longer than {deadline_s:g} s")
                yield chunk
        except Urllib3Timeout:
            raise FetchError(f"stalled: no data for {self.timeout_s:g} s") from None
        except (Urllib3Error, OSError) as exc:
            raise FetchError(f"connection broken: {_reason(exc)}") from None
        self.consumed = True

    def read(self, *, max_bytes: int, deadline_s: float | None = None) -> bytes:
        return b"".join(self.chunks(max_bytes=max_bytes, deadline_s=deadline_s))

    def copy_to(self, sink: IO[bytes], *, max_bytes: int) -> int:
        written = 0
        for chunk in self.chunks(max_bytes=max_bytes):
            sink.write(chunk)
            written += len(chunk)
        return written


@lru_cache(maxsize=4)
def _client(allow_private: bool, timeout_s: float) -> FetchClient:
    return FetchClient(allow_private=allow_private, timeout_s=timeout_s)


def client() -> FetchClient:
    """The process's client for the current settings (read per call: tests change them)."""
    return _client(settings.PODCAST_ALLOW_PRIVATE_HOSTS, float(settings.PODCAST_FETCH_TIMEOUT_S))
