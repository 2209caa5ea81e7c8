"""HTTP Range serving of one file, or of a sequence of files presented as ONE representation, and the
X-Accel-Redirect answer that hands a file to nginx instead.

Used for direct play of originals, for downloading an HLS fMP4 rendition as a single ``.m4a``
(``init.mp4`` + ``seg0.m4s`` + ``seg1.m4s`` ... concatenated on the fly, never written out as a copy) and for
``/hls/`` without nginx. Generic HTTP: which file, and whether nginx sends it, is the caller's decision.

What is implemented (RFC 9110):
- ``Accept-Ranges: bytes`` on every representation response.
- Range answers are nginx's, case for case (see :func:`parse_range`; tests/e2e holds the two to one table):
  ``bytes=a-b``, ``bytes=a-``, ``bytes=-n`` → 206 with ``Content-Range``, an end past the representation
  clamped; another unit → the header is ignored (200); malformed ranges (``a > b``, ``abc``, ``-``, a
  trailing ``,``) and ranges that name no byte → 416 with ``Content-Range: bytes */size``.
- Several ranges (``bytes=0-1,5-6``) → ignored: 200 with the full body, as nginx with ``max_ranges 1``
  (deploy/nginx). RFC 9110 §14.2 lets a server ignore Range; players ask for one range, and
  ``multipart/byteranges`` would be code nobody exercises.
- ``If-Range`` (strong ETag comparison, or an HTTP-date equal to Last-Modified) gates the range.
- ``If-Match``/``If-Unmodified-Since`` (412) and ``If-None-Match``/``If-Modified-Since`` (304) through
  :func:`django.utils.cache.get_conditional_response`, which follows the §13.2.2 order.
- HEAD answers exactly the headers GET would, with no body.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import get_conditional_response
from django.utils.http import content_disposition_header, http_date, parse_http_date_safe, quote_etag

__all__ = [
    "CHUNK_BYTES",
    "UNSATISFIABLE",
    "ByteRange",
    "RepresentationChanged",
    "Unsatisfiable",
    "accel_redirect_response",
    "file_response",
    "parse_range",
]

# Big enough that a 1 GB original is ~4,000 reads and yields, small enough that many concurrent
# streams stay cheap; memory per stream is one chunk whatever the file size.
CHUNK_BYTES: Final = 256 * 1024

# nginx parses positions into an off_t and answers 416 past its maximum.
_MAX_OFF_T: Final = 2**63 - 1


class ByteRange(NamedTuple):
    """A satisfiable range; ``end`` is inclusive, as in ``Content-Range``."""

    start: int
    end: int

    @property
    def length_bytes(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(enum.Enum):
    """A valid Range that names no byte of the representation: answer 416."""

    UNSATISFIABLE = "unsatisfiable"


UNSATISFIABLE: Final = Unsatisfiable.UNSATISFIABLE


class RepresentationChanged(OSError):
    """A part changed between the stat that produced the headers and the read of its bytes.

    Raised from the body iterator, after the headers went out: the WSGI server then drops the connection, so
    the client sees a short response rather than bytes of two versions under one ETag and Content-Length.
    """


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """The byte range a ``Range`` header asks of a ``size``-byte representation, exactly as nginx answers it.

    nginx is the oracle (tests/e2e runs the shipped site on the same table as tests/ops/test_http.py),
    because the same server answers with and without it: nginx's ``ngx_http_range_parse`` with
    ``max_ranges 1`` (deploy/nginx). None means "ignore the header, send 200", ``UNSATISFIABLE`` 416:

    - a header that does not start with ``bytes=`` (any case) or is only that: ignored;
    - each range-spec: spaces (not tabs) may surround the numbers and the ``-``; anything else that is not
      ``first-``, ``first-last`` or ``-suffix`` (``abc``, ``-``, ``+5-10``, an empty element as in
      ``5-10,`` or ``5-10, ``, a number past 2**63-1) makes the whole header 416;
    - a range that names no byte (``500-400``, a first byte at or past the end, ``-0``) is skipped; if none is
      left: 416. But a range starting at byte 0 that names nothing (any range of an empty file) means "ignore";
    - a second range that names bytes: ignored (``max_ranges 1``: no ``multipart/byteranges``; players ask
      for one range), even if a later element is garbage.
    """
    if header is None:
        return None
    # What the WSGI server hands over has its surrounding spaces and tabs removed already (gunicorn strips
    # both); nginx drops leading spaces only. A tab at the edge of the header is the one case where the two
    # HTTP parsers themselves differ, before this function is reached.
    value = header.strip(" \t")
    if len(value) < 7 or value[:6].lower() != "bytes=":
        return None
    end_of_value = len(value)
    chosen: ByteRange | None = None
    p = 6
    while True:
        p = _skip_spaces(value, p)
        if p < end_of_value and value[p] == "-":
            suffix, p = _number(value, p + 1)
            if suffix is None:
                return UNSATISFIABLE
            p = _skip_spaces(value, p)
            if p < end_of_value and value[p] != ",":
                return UNSATISFIABLE
            start, stop = (size - suffix if suffix < size else 0), size  # stop: exclusive
        else:
            first, p = _number(value, p)
            if first is None:
                return UNSATISFIABLE
            start = first
            p = _skip_spaces(value, p)
            if p >= end_of_value or value[p] != "-":
                return UNSATISFIABLE
            p = _skip_spaces(value, p + 1)
            if p >= end_of_value or value[p] == ",":
                stop = size
            else:
                last, p = _number(value, p)
                if last is None:
                    return UNSATISFIABLE
                p = _skip_spaces(value, p)
                if p < end_of_value and value[p] != ",":
                    return UNSATISFIABLE
                stop = size if last >= size else last + 1
        if start < stop:
            if chosen is not None:
                return None
            chosen = ByteRange(start, stop - 1)
        elif start == 0:
            return None
        if p >= end_of_value:
            break
        p += 1  # the ","
    return chosen if chosen is not None else UNSATISFIABLE


def _skip_spaces(value: str, p: int) -> int:
    while p < len(value) and value[p] == " ":
        p += 1
    return p


def _number(value: str, p: int) -> tuple[int | None, int]:
    """The ASCII digits at ``p`` (``[0-9]``: str.isdigit also takes "²" and other scripts' digits) and the
    position after them; None when there is none, or when the number passes off_t (nginx: 416)."""
    first = p
    while p < len(value) and "0" <= value[p] <= "9":
        p += 1
    if p == first:
        return None, p
    # Checked on the length first: int() refuses strings of more than 4,300 digits (CVE-2020-10735 guard).
    digits = value[first:p].lstrip("0") or "0"
    if len(digits) > len(str(_MAX_OFF_T)) or int(digits) > _MAX_OFF_T:
        return None, p
    return int(digits), p


@dataclass(frozen=True)
class _Part:
    path: Path
    size_bytes: int
    mtime_ns: int
    inode: int
    device: int
    # A file the caller opened (and checked): served as it is, never opened again by path.
    opened: BinaryIO | None = field(default=None, compare=False)

    @classmethod
    def from_stat(cls, path: Path, st: os.stat_result, opened: BinaryIO | None = None) -> _Part:
        return cls(path, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, opened)


def _stat_part(part: Path | BinaryIO) -> _Part:
    if isinstance(part, Path):
        st = part.stat()  # follows symlinks, as open() will
        path, opened = part, None
    else:
        st = os.fstat(part.fileno())
        path, opened = Path(str(part.name)), part
    # A FIFO or a device would block or never end; a directory would fail mid-body. Say so before any header.
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path} is not a regular file")
    return _Part.from_stat(path, st, opened)


def _open_part(part: _Part) -> BinaryIO:
    """Open a part, checking it is still the file whose size and mtime went into the headers."""
    file = part.opened if part.opened is not None else part.path.open("rb")
    try:
        if _Part.from_stat(part.path, os.fstat(file.fileno())) != part:
            raise RepresentationChanged(f"{part.path} changed while being served")
    except BaseException:
        file.close()
        raise
    return file


def _derive_etag(parts: Sequence[_Part]) -> str:
    # (size, mtime_ns, inode) of every part: an atomic rename (new inode) or any rewrite changes it, and it
    # costs no read of the bytes. Strong, because the same triple means the same bytes for our writers.
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(f"{part.size_bytes}:{part.mtime_ns}:{part.inode};".encode())
    return f'"{digest.hexdigest()}"'


def _if_range_passes(request: HttpRequest, etag: str, last_modified_s: int) -> bool:
    if_range = request.headers.get("If-Range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        # Strong comparison (§13.1.5): a weak validator, ours or theirs, never matches.
        return not etag.startswith("W/") and if_range == etag
    return parse_http_date_safe(if_range) == last_modified_s


def _stream(parts: Sequence[_Part], byte_range: ByteRange) -> Iterator[bytes]:
    """The bytes of ``byte_range`` across the parts, opening one part at a time."""
    part_start = 0  # offset of the current part in the representation
    for part in parts:
        if part_start > byte_range.end:
            return
        part_end = part_start + part.size_bytes  # exclusive
        first = max(byte_range.start, part_start)
        stop = min(byte_range.end + 1, part_end)
        if first < stop:
            yield from _stream_part(part, first - part_start, stop - first)
        part_start = part_end


def _stream_part(part: _Part, offset: int, length_bytes: int) -> Iterator[bytes]:
    # `with` inside the generator: when the client goes away the WSGI server calls response.close(), which
    # closes this generator (GeneratorExit at the yield), which closes the file.
    with _open_part(part) as file:
        file.seek(offset)
        remaining = length_bytes
        while remaining:
            chunk = file.read(min(CHUNK_BYTES, remaining))
            if not chunk:  # truncated since the fstat check
                raise RepresentationChanged(f"{part.path} shrank while being served")
            remaining -= len(chunk)
            yield chunk


def file_response(
    request: HttpRequest,
    *,
    parts: Sequence[Path | BinaryIO],
    content_type: str,
    etag: str | None = None,
    filename: str | None = None,
    cache_control: str = "private, max-age=0",
) -> HttpResponseBase:
    """Serve ``parts`` (absolute paths, already authorized) as one representation, with Range support.

    A part may also be a file the caller opened for reading (an original it checked on that descriptor:
    apps.library.services.audio_file_open): its bytes are sent from that descriptor, and it is closed with
    the response, whatever the answer.

    Size is the sum of the parts, Last-Modified the latest mtime. ``etag`` (quoted if it is not) replaces
    the default strong ETag derived from (size, mtime_ns, inode) of every part.

    Returns a StreamingHttpResponse (a FileResponse for a full single file, so gunicorn can sendfile), an
    HttpResponse for HEAD, 304, 412 and 416; hence ``HttpResponseBase``. Raises OSError (FileNotFoundError...)
    if a part cannot be stat'ed, and ValueError if a part is not a regular file.
    """
    if not parts:
        raise ValueError("file_response needs at least one part")
    disposition = content_disposition_header(True, filename) if filename else None

    opened = [part for part in parts if not isinstance(part, (str, os.PathLike))]

    def close_opened() -> None:
        for file in opened:
            file.close()

    try:
        stats = [_stat_part(Path(part) if isinstance(part, (str, os.PathLike)) else part) for part in parts]
    except BaseException:
        close_opened()
        raise
    size = sum(part.size_bytes for part in stats)
    last_modified_s = max(part.mtime_ns for part in stats) // 1_000_000_000
    etag = quote_etag(etag) if etag is not None else _derive_etag(stats)
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": cache_control,
        "ETag": etag,
        "Last-Modified": http_date(last_modified_s),
    }

    # Django's own §13.2.2 evaluation (steps 1-4). The probe carries the headers a 304 must repeat; any other
    # answer than the probe itself is the 304 or 412 to send.
    probe = HttpResponse(headers=headers)
    conditional = get_conditional_response(request, etag=etag, last_modified=last_modified_s, response=probe)
    if conditional is not None and conditional is not probe:
        close_opened()
        return conditional

    # Range is only defined for GET (§14.2); HEAD mirrors GET so a client can probe what it would get.
    byte_range: ByteRange | Unsatisfiable | None = None
    if request.method in ("GET", "HEAD") and _if_range_passes(request, etag, last_modified_s):
        byte_range = parse_range(request.headers.get("Range"), size)

    if byte_range is UNSATISFIABLE:
        close_opened()
        unsatisfiable = HttpResponse(status=416, headers=headers)
        unsatisfiable["Content-Range"] = f"bytes */{size}"
        unsatisfiable["Content-Length"] = "0"
        return unsatisfiable

    if byte_range is None:
        status, body_range = 200, ByteRange(0, size - 1)
    else:
        status, body_range = 206, byte_range
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"

    response: HttpResponseBase
    if request.method == "HEAD":
        close_opened()
        response = HttpResponse(status=status, content_type=content_type)
    elif status == 200 and len(stats) == 1:
        # wsgi.file_wrapper lets gunicorn sendfile() the whole file. Only for 200: a wrapper may read to EOF.
        response = FileResponse(_open_part(stats[0]), status=status, content_type=content_type)
        response.block_size = CHUNK_BYTES
    else:
        response = StreamingHttpResponse(_stream(stats, body_range), status=status, content_type=content_type)
        # The body closes each file it reaches; these are for the ones it never reaches (a range that ends
        # before them, a client gone before the first byte). Django's own FileResponse closes its file so.
        response._resource_closers.extend(file.close for file in opened)  # type: ignore[attr-defined]

    # FileResponse names the on-disk file in an inline Content-Disposition: the caller decides the name, and
    # both paths must send the same headers.
    response.headers.pop("Content-Disposition", None)
    if disposition:
        response["Content-Disposition"] = disposition
    for name, value in headers.items():
        response[name] = value
    response["Content-Length"] = str(body_range.length_bytes)
    return response


def accel_redirect_response(
    *, location: str, content_type: str, filename: str | None = None, cache_control: str = "private, max-age=0"
) -> HttpResponse:
    """Hand one file to nginx: an empty 200 with ``X-Accel-Redirect`` (``location``: an internal location,
    already URL-quoted by the caller), Content-Type, Content-Disposition and Cache-Control.

    nginx answers Range, If-Range, ETag and Last-Modified itself from the file on its internal location, so
    none of them is set or evaluated here, and the file is not even stat'ed. One file only: a sequence of
    parts (a rendition downloaded as one file) has no file nginx could send, so Django streams it.
    """
    accel = HttpResponse(content_type=content_type)
    accel["X-Accel-Redirect"] = location
    accel["Cache-Control"] = cache_control
    if filename:
        accel["Content-Disposition"] = content_disposition_header(True, filename)
    return accel


def normalize_path(path: str) -> str | None:
    """A request path as nginx sees it, for the views that must answer as its signed locations do (/hls/, /art/):
    slashes merged, `.` and `..` resolved; None when `..` climbs above the root or a NUL is present (nginx
    answers 400 to both)."""
    if "\x00" in path:
        return None
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    # A trailing slash names a folder, as for nginx: `.../init.mp4/` is not the file.
    return "/".join(parts) + ("/" if parts and path.endswith("/") else "")
