"""apps.ops.http: Range, If-Range and conditional GET over one file or a sequence of parts."""

from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path

import pytest
from django.db import connections
from django.http import FileResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.test import RequestFactory
from django.utils.http import content_disposition_header, http_date

from apps.ops.http import (
    CHUNK_BYTES,
    UNSATISFIABLE,
    ByteRange,
    RepresentationChanged,
    accel_redirect_response,
    file_response,
    parse_range,
)

SIZE = 1_000_000
# Three parts: a small "init", a middle part larger than one read chunk, and the rest.
BOUNDARIES = (1_000, 700_000)
MTIME_NS = 1_700_000_000_123_456_789
LAST_MODIFIED = http_date(MTIME_NS // 1_000_000_000)
HUGE = "9" * 5_000  # more digits than int() accepts by default
CONTENT_TYPE = "audio/mp4"

rf = RequestFactory()


@pytest.fixture(autouse=True)
def _no_database_connection() -> None:
    """These tests use no database, but closing a response sends request_finished, whose handler checks every
    open connection, and one left open by an earlier database test (pytest-django runs those first) would be
    touched from a test without database access: closed first, there is nothing to check."""
    connections.close_all()


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(20240611).randbytes(SIZE)


def write(path: Path, content: bytes, mtime_ns: int = MTIME_NS) -> Path:
    path.write_bytes(content)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


@pytest.fixture
def one_part(tmp_path: Path, data: bytes) -> list[Path]:
    return [write(tmp_path / "track.flac", data)]


@pytest.fixture
def three_parts(tmp_path: Path, data: bytes) -> list[Path]:
    a, b = BOUNDARIES
    return [
        write(tmp_path / "init.mp4", data[:a]),
        write(tmp_path / "seg0.m4s", data[a:b]),
        write(tmp_path / "seg1.m4s", data[b:]),
    ]


@pytest.fixture(params=["one_part", "three_parts"])
def parts(request: pytest.FixtureRequest) -> list[Path]:
    """The same 1 MB representation as one file and as three parts: every case must answer the same."""
    return request.getfixturevalue(request.param)


def serve(parts: list[Path], method: str = "GET", headers: dict[str, str] | None = None, **options) -> HttpResponseBase:
    request = rf.generic(method, "/download", headers=headers or {})
    return file_response(request, parts=parts, content_type=CONTENT_TYPE, **options)


def body(response: HttpResponseBase) -> bytes:
    if isinstance(response, StreamingHttpResponse):
        try:
            return b"".join(response.streaming_content)
        finally:
            response.close()
    return response.content


def headers_of(response: HttpResponseBase) -> dict[str, str]:
    return dict(response.headers.items())


# --- parse_range: the pure function --------------------------------------------------------------------


# Every expectation here is nginx's answer (1.22, `max_ranges 1`), found by running it: see RANGE_TABLE
# below for the cases that tests/e2e also sends to the shipped nginx site.
@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 100, None),
        ("", 100, None),
        ("bytes=0-0", 100, (0, 0)),
        ("bytes=10-19", 100, (10, 19)),
        ("bytes=10-", 100, (10, 99)),
        ("bytes=99-", 100, (99, 99)),
        ("bytes=-1", 100, (99, 99)),
        ("bytes=-30", 100, (70, 99)),
        ("bytes=-100", 100, (0, 99)),
        ("bytes=-1000", 100, (0, 99)),
        ("bytes=90-1000", 100, (90, 99)),
        ("bytes=5-5", 100, (5, 5)),
        ("bytes=007-008", 100, (7, 8)),
        ("Bytes=1-2", 100, (1, 2)),  # the unit is case-insensitive
        ("bytes= 1-2 ", 100, (1, 2)),  # spaces around a range...
        ("bytes=1 - 2", 100, (1, 2)),  # ...and inside it
        ("bytes=5 -10", 100, (5, 10)),
        (f"bytes=0-{2**63 - 1}", 100, (0, 99)),  # the largest off_t
        ("bytes=0-1,100-", 100, (0, 1)),  # a second range that names no byte is dropped
        ("bytes=20-10,1-2", 100, (1, 2)),
        ("bytes=100-", 100, UNSATISFIABLE),
        ("bytes=100-200", 100, UNSATISFIABLE),
        ("bytes=200-,300-", 100, UNSATISFIABLE),
        ("bytes=20-10", 100, UNSATISFIABLE),  # a > b names no byte
        ("bytes=-0", 100, UNSATISFIABLE),
        ("bytes=-000", 100, UNSATISFIABLE),
        ("bytes=1-", 0, UNSATISFIABLE),
        (f"bytes=0-{2**63}", 100, UNSATISFIABLE),  # past off_t
        (f"bytes=0-{HUGE}", 100, UNSATISFIABLE),
        (f"bytes={HUGE}-", 100, UNSATISFIABLE),
        (f"bytes=-{HUGE}", 100, UNSATISFIABLE),
        ("bytes=1-2,", 100, UNSATISFIABLE),  # an empty element
        ("bytes=5-10, ", 100, UNSATISFIABLE),
        ("bytes=,", 100, UNSATISFIABLE),
        ("bytes=,1-2", 100, UNSATISFIABLE),
        ("bytes=-", 100, UNSATISFIABLE),
        ("bytes=abc", 100, UNSATISFIABLE),
        ("bytes=--5", 100, UNSATISFIABLE),
        ("bytes=-5-10", 100, UNSATISFIABLE),
        ("bytes=+5-10", 100, UNSATISFIABLE),
        ("bytes=5-10x", 100, UNSATISFIABLE),
        ("bytes=5", 100, UNSATISFIABLE),
        ("bytes=\t1-2", 100, UNSATISFIABLE),  # only spaces are skipped, not tabs
        ("bytes=1-2,\t3-4", 100, UNSATISFIABLE),
        ("bytes=\u0665-\u0669", 100, UNSATISFIABLE),  # Arabic-Indic digits: int() would take them, nginx not
        ("bytes=0-", 0, None),  # a range from byte 0 of an empty file: the (empty) whole
        ("bytes=0-0", 0, None),
        ("bytes=-5", 0, None),
        ("items=0-10", 100, None),
        ("bytes =5-10", 100, None),
        ("bytes", 100, None),
        ("bytes=", 100, None),
        ("bytes=0-1,5-6", 100, None),  # several ranges: the whole body (max_ranges 1)
        ("bytes=0-1,0-1", 100, None),
        ("bytes=-1,-1", 100, None),
        ("bytes=0-1,5-6,abc", 100, None),  # decided at the second range, before the garbage
    ],
)
def test_parse_range(header: str | None, size: int, expected) -> None:
    assert parse_range(header, size) == expected


def test_parse_range_returns_a_byte_range_with_its_length() -> None:
    byte_range = parse_range("bytes=10-19", 100)
    assert isinstance(byte_range, ByteRange)
    assert byte_range.length_bytes == 10


# --- the table nginx answers too ----------------------------------------------------------------------

# (Range header, status, Content-Range) for a representation of any size over 1,000 bytes; "{size}",
# "{last}" (size - 1) and "{tail}" (size - 500) are filled in for the file at hand. tests/e2e/test_proxy.py
# sends the same rows to the shipped nginx site (its static module on /hls/ and /_originals/) and to Django
# without nginx, so the two answers can never drift apart (issue 13, finding 8).
RANGE_TABLE: list[tuple[str | None, int, str | None]] = [
    (None, 200, None),
    ("bytes=0-99", 206, "bytes 0-99/{size}"),
    ("bytes=0-0", 206, "bytes 0-0/{size}"),
    ("bytes=500-", 206, "bytes 500-{last}/{size}"),
    ("bytes={last}-", 206, "bytes {last}-{last}/{size}"),
    ("bytes=-500", 206, "bytes {tail}-{last}/{size}"),
    ("bytes=-99999999999", 206, "bytes 0-{last}/{size}"),
    ("bytes=0-99999999999", 206, "bytes 0-{last}/{size}"),
    ("Bytes=1-2", 206, "bytes 1-2/{size}"),
    ("bytes=1 - 2", 206, "bytes 1-2/{size}"),
    ("bytes=0-1,{size}-", 206, "bytes 0-1/{size}"),  # a second range that names no byte is dropped
    ("bytes={size}-", 416, "bytes */{size}"),
    ("bytes=-0", 416, "bytes */{size}"),
    ("bytes=500-400", 416, "bytes */{size}"),
    ("bytes=abc", 416, "bytes */{size}"),
    ("bytes=-", 416, "bytes */{size}"),
    ("bytes=-5-10", 416, "bytes */{size}"),
    ("bytes=5-10,", 416, "bytes */{size}"),
    ("bytes=5-10, ", 416, "bytes */{size}"),
    ("bytes=99999999999999999999-", 416, "bytes */{size}"),  # past off_t
    ("bytes=0-1,5-6", 200, None),  # several ranges: the whole body (max_ranges 1)
    ("bytes=-1,-1", 200, None),
    ("bytes=0-1,5-6,abc", 200, None),
    ("items=0-9", 200, None),
    ("bytes=", 200, None),
]
# The same for an empty file: a range from byte 0 is the (empty) whole, one from byte 1 names nothing.
EMPTY_RANGE_TABLE: list[tuple[str | None, int, str | None]] = [
    (None, 200, None),
    ("bytes=0-", 200, None),
    ("bytes=0-0", 200, None),
    ("bytes=-5", 200, None),
    ("bytes=1-", 416, "bytes */0"),
    ("bytes=abc", 416, "bytes */0"),
]


def range_case(row: tuple[str | None, int, str | None], size: int) -> tuple[str | None, int, str | None]:
    """A table row filled in for a representation of ``size`` bytes."""
    header, status, content_range = row
    values = {"size": size, "last": size - 1, "tail": size - 500}
    return (
        None if header is None else header.format(**values),
        status,
        None if content_range is None else content_range.format(**values),
    )


@pytest.mark.parametrize("row", RANGE_TABLE, ids=lambda row: repr(row[0]))
def test_the_range_table_is_answered_as_nginx_answers_it(parts: list[Path], data: bytes, row) -> None:
    header, status, content_range = range_case(row, SIZE)

    response = serve(parts, headers={"Range": header} if header is not None else None)

    assert (response.status_code, response.get("Content-Range")) == (status, content_range)
    assert response["Accept-Ranges"] == "bytes"
    if status == 206:
        first, last = map(int, content_range.split()[1].split("/")[0].split("-"))
        assert body(response) == data[first : last + 1]
    else:
        assert body(response) == (data if status == 200 else b"")


@pytest.mark.parametrize("row", EMPTY_RANGE_TABLE, ids=lambda row: repr(row[0]))
def test_the_range_table_of_an_empty_file_is_answered_as_nginx_answers_it(tmp_path: Path, row) -> None:
    header, status, content_range = range_case(row, 0)

    response = serve([write(tmp_path / "empty.m4a", b"")], headers={"Range": header} if header else None)

    assert (response.status_code, response.get("Content-Range"), body(response)) == (status, content_range, b"")


# --- responses: exact bytes and headers ----------------------------------------------------------------

a, b = BOUNDARIES


@pytest.mark.parametrize(
    ("range_header", "start", "stop"),
    [
        ("bytes=0-0", 0, 1),  # first byte
        (f"bytes={SIZE - 1}-{SIZE - 1}", SIZE - 1, SIZE),  # last byte
        ("bytes=100-199", 100, 200),
        ("bytes=999000-", 999_000, SIZE),
        ("bytes=0-", 0, SIZE),  # still a 206: the client asked for a range
        ("bytes=-500", SIZE - 500, SIZE),
        ("bytes=-2000000", 0, SIZE),
        (f"bytes=999990-{2 * SIZE}", 999_990, SIZE),
        (f"bytes={a - 10}-{a + 10}", a - 10, a + 11),  # across the first boundary
        (f"bytes={a - 1}-{a}", a - 1, a + 1),  # last byte of one part, first of the next
        (f"bytes={a}-{b - 1}", a, b),  # exactly the middle part
        (f"bytes={b}-{b}", b, b + 1),
        ("bytes=500-800000", 500, 800_001),  # across both boundaries, more than one chunk
        (f"bytes={a + 5}-{a + CHUNK_BYTES + 5}", a + 5, a + CHUNK_BYTES + 6),  # one byte over a chunk
    ],
)
def test_a_satisfiable_range_answers_206_with_exactly_those_bytes(
    parts: list[Path], data: bytes, range_header: str, start: int, stop: int
) -> None:
    response = serve(parts, headers={"Range": range_header})

    assert response.status_code == 206
    assert isinstance(response, StreamingHttpResponse) and not isinstance(response, FileResponse)
    assert response["Content-Range"] == f"bytes {start}-{stop - 1}/{SIZE}"
    assert response["Content-Length"] == str(stop - start)
    assert response["Content-Type"] == CONTENT_TYPE
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == data[start:stop]


@pytest.mark.parametrize(
    "range_header",
    [
        f"bytes={SIZE}-",
        f"bytes={SIZE}-{SIZE + 10}",
        f"bytes={HUGE}-",
        "bytes=-0",
        # Malformed: nginx answers 416, not "ignore the header" (issue 13, finding 8).
        "bytes=abc",
        "bytes=-",
        "bytes=-5-10",
        "bytes=10-5",
        "bytes=500-400",
        "bytes=5-10, ",
    ],
)
def test_an_unsatisfiable_range_answers_416_with_the_size_and_no_body(parts: list[Path], range_header: str) -> None:
    response = serve(parts, headers={"Range": range_header})

    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"
    assert response["Content-Length"] == "0"
    assert response["Accept-Ranges"] == "bytes"
    assert body(response) == b""


@pytest.mark.parametrize(
    "range_header",
    [
        None,
        "items=0-9",
        "bytes=",
        "bytes=0-1,5-6",  # multi-range: the full body, no multipart/byteranges
        "bytes=0-1,5-6,abc",
    ],
)
def test_no_range_another_unit_or_several_answer_200_with_the_full_body(
    parts: list[Path], data: bytes, range_header: str | None
) -> None:
    response = serve(parts, headers={"Range": range_header} if range_header is not None else None)

    assert response.status_code == 200
    assert not response.has_header("Content-Range")
    assert response["Content-Length"] == str(SIZE)
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Type"] == CONTENT_TYPE
    assert response["Last-Modified"] == LAST_MODIFIED
    assert response["Cache-Control"] == "private, max-age=0"
    assert body(response) == data


def test_one_file_is_a_file_response_for_sendfile_and_several_parts_a_stream(
    one_part: list[Path], three_parts: list[Path]
) -> None:
    single, sequence = serve(one_part), serve(three_parts)

    assert isinstance(single, FileResponse)
    assert single.block_size == CHUNK_BYTES
    assert type(sequence) is StreamingHttpResponse
    # FileResponse would add "inline; filename=track.flac": both paths must send the same headers.
    assert not single.has_header("Content-Disposition")
    assert {**headers_of(single), "ETag": "-"} == {**headers_of(sequence), "ETag": "-"}
    single.close()
    sequence.close()


@pytest.mark.parametrize("range_header", [None, "bytes=10-20", "bytes=-5", f"bytes={SIZE}-", "bytes=oops"])
def test_head_sends_the_headers_of_get_and_no_body(parts: list[Path], range_header: str | None) -> None:
    headers = {"Range": range_header} if range_header is not None else None
    get, head = serve(parts, headers=headers), serve(parts, "HEAD", headers=headers)

    assert head.status_code == get.status_code
    assert headers_of(head) == headers_of(get)
    assert body(head) == b""
    get.close()


def test_content_disposition_names_the_download_in_utf8(parts: list[Path]) -> None:
    response = serve(parts, filename="Café — live.m4a")

    assert response["Content-Disposition"] == content_disposition_header(True, "Café — live.m4a")
    assert response["Content-Disposition"] == "attachment; filename*=utf-8''Caf%C3%A9%20%E2%80%94%20live.m4a"
    response.close()


def test_cache_control_and_a_given_etag_are_used_as_given_quoted_if_needed(parts: list[Path]) -> None:
    bare = serve(parts, etag="rendition-7", cache_control="private, max-age=3600")
    quoted = serve(parts, etag='"rendition-7"')

    assert bare["ETag"] == quoted["ETag"] == '"rendition-7"'
    assert bare["Cache-Control"] == "private, max-age=3600"
    bare.close()
    quoted.close()


def test_derived_etag_is_strong_stable_and_changes_with_any_part(three_parts: list[Path]) -> None:
    etag = serve(three_parts)["ETag"]

    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 34
    assert serve(three_parts)["ETag"] == etag
    os.utime(three_parts[1], ns=(MTIME_NS + 1, MTIME_NS + 1))
    assert serve(three_parts)["ETag"] != etag
    assert serve(three_parts[:2])["ETag"] != etag


def test_last_modified_is_the_latest_part(three_parts: list[Path]) -> None:
    later_ns = MTIME_NS + 86_400 * 1_000_000_000
    os.utime(three_parts[1], ns=(later_ns, later_ns))

    assert serve(three_parts)["Last-Modified"] == http_date(later_ns // 1_000_000_000)


# --- If-Range ------------------------------------------------------------------------------------------


def test_if_range_with_the_current_etag_or_date_honours_the_range(parts: list[Path], data: bytes) -> None:
    etag = serve(parts)["ETag"]

    by_etag = serve(parts, headers={"Range": "bytes=10-19", "If-Range": etag})
    by_date = serve(parts, headers={"Range": "bytes=10-19", "If-Range": LAST_MODIFIED})

    assert (by_etag.status_code, body(by_etag)) == (206, data[10:20])
    assert (by_date.status_code, body(by_date)) == (206, data[10:20])


@pytest.mark.parametrize(
    "if_range",
    [
        '"something-else"',
        "W/{etag}",  # If-Range compares strongly: a weak tag never matches
        http_date(MTIME_NS // 1_000_000_000 - 1),
        http_date(MTIME_NS // 1_000_000_000 + 1),
        "not a date",
    ],
)
def test_if_range_that_does_not_match_sends_the_full_body(parts: list[Path], data: bytes, if_range: str) -> None:
    if_range = if_range.format(etag=serve(parts)["ETag"])

    response = serve(parts, headers={"Range": "bytes=10-19", "If-Range": if_range})

    assert response.status_code == 200
    assert not response.has_header("Content-Range")
    assert body(response) == data


def test_if_range_that_does_not_match_turns_a_416_into_the_full_body(parts: list[Path], data: bytes) -> None:
    response = serve(parts, headers={"Range": f"bytes={SIZE}-", "If-Range": '"old"'})

    assert (response.status_code, body(response)) == (200, data)


def test_a_weak_etag_of_ours_never_satisfies_if_range(parts: list[Path], data: bytes) -> None:
    response = serve(parts, headers={"Range": "bytes=10-19", "If-Range": 'W/"v1"'}, etag='W/"v1"')

    assert (response.status_code, body(response)) == (200, data)


# --- conditional GET -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("if_none_match", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_answers_304_with_the_validators(parts: list[Path], method: str, if_none_match: str) -> None:
    etag = serve(parts)["ETag"]

    response = serve(parts, method, headers={"If-None-Match": if_none_match.format(etag=etag), "Range": "bytes=0-9"})

    assert response.status_code == 304
    assert response["ETag"] == etag
    assert response["Last-Modified"] == LAST_MODIFIED
    assert response["Cache-Control"] == "private, max-age=0"
    assert not response.has_header("Content-Range")
    assert body(response) == b""


def test_if_none_match_with_another_etag_sends_the_body_and_overrides_if_modified_since(parts: list[Path]) -> None:
    response = serve(parts, headers={"If-None-Match": '"other"', "If-Modified-Since": LAST_MODIFIED})

    assert response.status_code == 200
    assert len(body(response)) == SIZE


def test_if_modified_since_answers_304_when_not_modified(parts: list[Path], data: bytes) -> None:
    unchanged = serve(parts, headers={"If-Modified-Since": LAST_MODIFIED})
    changed = serve(parts, headers={"If-Modified-Since": http_date(MTIME_NS // 1_000_000_000 - 1)})

    assert (unchanged.status_code, body(unchanged)) == (304, b"")
    assert (changed.status_code, body(changed)) == (200, data)


def test_if_match_with_another_etag_answers_412(parts: list[Path]) -> None:
    response = serve(parts, headers={"If-Match": '"other"'})

    assert (response.status_code, body(response)) == (412, b"")


# --- edges ---------------------------------------------------------------------------------------------


def test_an_empty_file_has_a_200_of_nothing_for_ranges_from_byte_0_and_416_for_others(tmp_path: Path) -> None:
    empty = [write(tmp_path / "empty.m4a", b"")]

    # As nginx: a range from byte 0 of an empty file is the (empty) whole; one from byte 1 names nothing.
    for range_header in (None, "bytes=0-", "bytes=0-0", "bytes=-5"):
        response = serve(empty, headers={"Range": range_header} if range_header else None)
        assert (response.status_code, response["Content-Length"], body(response)) == (200, "0", b"")
        assert not response.has_header("Content-Range")
    unsatisfiable = serve(empty, headers={"Range": "bytes=1-"})
    assert (unsatisfiable.status_code, unsatisfiable["Content-Range"], body(unsatisfiable)) == (416, "bytes */0", b"")


def test_empty_parts_inside_a_sequence_are_skipped(tmp_path: Path, data: bytes) -> None:
    parts = [write(tmp_path / "a", b""), write(tmp_path / "b", data[:10]), write(tmp_path / "c", b"")]

    response = serve(parts, headers={"Range": "bytes=2-"})

    assert (response["Content-Range"], body(response)) == ("bytes 2-9/10", data[2:10])


def test_accel_redirect_hands_the_file_to_nginx_with_only_type_name_and_caching() -> None:
    # No request: Range and the validators are nginx's on its internal location, whatever the client sent.
    response = accel_redirect_response(
        location="/_originals/Artist/A%20Song.flac", content_type=CONTENT_TYPE, filename="A Song.flac"
    )

    assert response.status_code == 200
    assert body(response) == b""
    assert response["X-Accel-Redirect"] == "/_originals/Artist/A%20Song.flac"
    assert response["Content-Type"] == CONTENT_TYPE
    assert response["Cache-Control"] == "private, max-age=0"
    # Django's content_disposition_header: plain filename= for ASCII, filename*=utf-8'' otherwise.
    assert response["Content-Disposition"] == 'attachment; filename="A Song.flac"'
    # nginx does Range and validators on its internal location.
    for name in ("Content-Range", "Accept-Ranges", "ETag", "Last-Modified"):
        assert not response.has_header(name)


def test_no_parts_at_all_are_refused() -> None:
    # (X-Accel-Redirect of several parts cannot be asked for any more: accel_redirect_response takes one location.)
    with pytest.raises(ValueError, match="at least one part"):
        serve([])


def test_a_missing_part_or_a_directory_fails_before_any_header(tmp_path: Path, one_part: list[Path]) -> None:
    with pytest.raises(FileNotFoundError):
        serve([*one_part, tmp_path / "gone.m4s"])
    with pytest.raises(ValueError, match="not a regular file"):
        serve([*one_part, tmp_path])


def test_a_part_replaced_after_the_headers_aborts_the_body(three_parts: list[Path], data: bytes) -> None:
    response = serve(three_parts)
    stream = iter(response.streaming_content)
    assert next(stream) == data[:a]
    write(three_parts[1], b"x" * 10)  # a re-encode landing mid-download

    with pytest.raises(RepresentationChanged):
        next(stream)
    response.close()


@pytest.mark.parametrize(
    ("method", "headers", "status", "expected"),
    [
        ("GET", None, 200, slice(0, SIZE)),
        ("GET", {"Range": "bytes=10-"}, 206, slice(10, SIZE)),
        ("GET", {"Range": "bytes=abc"}, 416, slice(0, 0)),
        ("GET", {"If-None-Match": "*"}, 304, slice(0, 0)),
        ("HEAD", None, 200, slice(0, 0)),
    ],
)
def test_an_opened_file_is_served_from_its_descriptor_and_closed_with_any_answer(
    tmp_path: Path, data: bytes, method: str, headers: dict | None, status: int, expected: slice
) -> None:
    path = write(tmp_path / "track.flac", data)
    file = path.open("rb")
    path.unlink()  # only the descriptor is left: the bytes can come from nowhere else

    response = serve([file], method, headers=headers)

    assert response.status_code == status
    assert body(response) == data[expected]
    assert file.closed


def test_an_opened_file_is_closed_when_the_answer_is_dropped_unread(tmp_path: Path, data: bytes) -> None:
    # Handed to nginx instead, the file is the caller's to close (tests/streaming/test_api.py, X-Accel-Redirect).
    unread = write(tmp_path / "track.flac", data).open("rb")

    serve([unread], headers={"Range": "bytes=10-"}).close()  # the client left before the first byte

    assert unread.closed


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("range_header", [None, "bytes=10-"])
def test_closing_the_response_midway_closes_the_file(one_part: list[Path], range_header: str | None) -> None:
    before = open_fds()
    response = serve(one_part, headers={"Range": range_header} if range_header else None)
    next(iter(response.streaming_content))
    assert open_fds() == before + 1

    response.close()  # what the WSGI server does when the client goes away

    assert open_fds() == before


def test_every_file_is_closed_after_the_body_is_sent(three_parts: list[Path]) -> None:
    before = open_fds()
    stream = iter(serve(three_parts).streaming_content)  # no close(): the generator must clean up itself
    for _ in stream:
        pass

    assert open_fds() == before


@pytest.mark.parametrize(
    ("part_count", "range_header"),
    [(1, None), (3, None), (3, "bytes=1-")],
)
def test_a_200_mb_representation_is_streamed_in_constant_memory(
    tmp_path: Path, part_count: int, range_header: str | None
) -> None:
    part_bytes = 200 * 1024 * 1024 // part_count
    parts = []
    for index in range(part_count):
        path = tmp_path / f"big{index}"
        with path.open("wb") as file:
            file.truncate(part_bytes)  # sparse: no disk, and reads are cheap
        parts.append(path)

    tracemalloc.start()
    try:
        response = serve(parts, headers={"Range": range_header} if range_header else None)
        sent_bytes = 0
        for chunk in response.streaming_content:
            sent_bytes += len(chunk)
        response.close()
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    expected_bytes = part_bytes * part_count - (1 if range_header else 0)
    assert sent_bytes == expected_bytes == int(response["Content-Length"])
    assert peak_bytes < 3 * 1024 * 1024
