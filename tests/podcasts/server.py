"""A real HTTP server for the podcast tests: feeds and audio served from memory, with the faults a
podcast client meets (stalls, redirects, huge bodies, dropped connections), and a log of requests."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes | Callable[[], Iterator[bytes]] = b""
    status: int = 200
    content_type: str = "application/rss+xml"
    headers: dict[str, str] = field(default_factory=dict)
    etag: bool = True  # answer If-None-Match with 304
    stall_before_headers_s: float = 0.0
    stall_after_bytes: int | None = None  # send this many body bytes, then stall
    stall_s: float = 0.0
    drop_after_bytes: int | None = None  # send this many body bytes, then close the connection
    ranges: bool = True
    send_length: bool = True


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    status: int
    client_port: int = 0  # one TCP connection per port: kept-alive requests share it


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def paths_hit(self) -> list[str]:
        return [hit.path for hit in self.hits]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(request.path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if route is None:
            self.hits.append(Hit(request.path, headers, 404, request.client_address[1]))
            self._send(request, 404, {"Content-Type": "text/plain"}, b"not found")
            return
        if route.stall_before_headers_s:
            time.sleep(route.stall_before_headers_s)
        out_headers = {"Content-Type": route.content_type, **route.headers}
        if callable(route.body):
            self.hits.append(Hit(request.path, headers, route.status, request.client_address[1]))
            request.send_response(route.status)
            for name, value in out_headers.items():
                request.send_header(name, value)
            request.send_header("Connection", "close")
            request.end_headers()
            try:
                for chunk in route.body():
                    request.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            request.close_connection = True
            return
        body = route.body
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if route.etag and route.status == 200:
            out_headers["ETag"] = etag
            if headers.get("if-none-match") == etag:
                self.hits.append(Hit(request.path, headers, 304, request.client_address[1]))
                self._send(request, 304, {"ETag": etag}, b"")
                return
        status = route.status
        range_header = headers.get("range", "")
        if route.ranges and status == 200:
            out_headers["Accept-Ranges"] = "bytes"
            if range_header.startswith("bytes=") and headers.get("if-range", etag) == etag:
                start = int(range_header[6:].split("-", 1)[0])
                out_headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
                body = body[start:]
                status = 206
        self.hits.append(Hit(request.path, headers, status, request.client_address[1]))
        self._send(request, status, out_headers, body, route)

    def _send(
        self,
        request: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        body: bytes,
        route: Route | None = None,
    ) -> None:
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        if route is None or route.send_length:
            request.send_header("Content-Length", str(len(body)))
        else:
            request.send_header("Connection", "close")
        request.end_headers()
        try:
            if route and route.drop_after_bytes is not None:
                request.wfile.write(body[: route.drop_after_bytes])
                request.wfile.flush()
                request.close_connection = True
                return
            if route and route.stall_after_bytes is not None:
                request.wfile.write(body[: route.stall_after_bytes])
                request.wfile.flush()
                time.sleep(route.stall_s)
                request.wfile.write(body[route.stall_after_bytes :])
                return
            request.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            request.close_connection = True
        if route is not None and not route.send_length:
            request.close_connection = True
