"""The `subsonic-response` envelope, rendered as XML (the default, what DSub reads) or JSON/JSONP from one
tree, so both formats carry the same data.

A response body is a tree of dicts built by the endpoints, in the shape of the spec's JSON:
- a scalar value (str, int, float, bool, datetime) is an XML attribute and a JSON member;
- a dict is a child element / object; a list is repeated child elements named by its key / a JSON array
  (a list of scalars: elements with text, e.g. `<versions>1</versions>`);
- the key `value` is an element's text (`<lyrics>...</lyrics>`), as the spec's JSON spells it;
- None is left out: optional fields the spec bounds (userRating 1-5) are absent, never 0.
"""

from __future__ import annotations

import enum
import json
import re
import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from django.http import HttpResponse

API_VERSION = "1.16.1"
SERVER_TYPE = "revenge"
XML_NAMESPACE = "http://subsonic.org/restapi"


def _server_version() -> str:
    try:
        with (Path(__file__).resolve().parents[2] / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


SERVER_VERSION = _server_version()

# What XML 1.0 cannot carry even escaped (control characters, lone surrogates from badly decoded tags,
# U+FFFE/U+FFFF): replaced by U+FFFD in both formats, so XML and JSON say the same thing.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_JSONP_CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*")


class ErrorCode(enum.IntEnum):
    GENERIC = 0
    MISSING_PARAMETER = 10
    CLIENT_TOO_OLD = 20
    SERVER_TOO_OLD = 30
    WRONG_CREDENTIALS = 40
    TOKEN_AUTH_NOT_SUPPORTED = 41
    AUTH_MECHANISM_NOT_SUPPORTED = 42
    CONFLICTING_AUTH = 43
    INVALID_API_KEY = 44
    NOT_AUTHORIZED = 50
    NOT_FOUND = 70


class SubsonicError(Exception):
    """An endpoint's refusal, answered as `status="failed"` with the spec's error code (HTTP 200)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def missing(name: str) -> SubsonicError:
    return SubsonicError(ErrorCode.MISSING_PARAMETER, f"Required parameter is missing: {name}")


def not_found(what: str = "Data") -> SubsonicError:
    return SubsonicError(ErrorCode.NOT_FOUND, f"{what} not found")


class Format(enum.StrEnum):
    XML = "xml"
    JSON = "json"
    JSONP = "jsonp"


def response_format(value: str | None) -> Format:
    """`f`: xml when absent or unknown (what Subsonic servers do)."""
    try:
        return Format(value or "xml")
    except ValueError:
        return Format.XML


def _text(value: str) -> str:
    return _NOT_XML.sub("\ufffd", value)


def clean_text(value: str) -> str:
    """A string as both formats carry it (see _NOT_XML); most strings are printable and returned as they are."""
    return value if value.isprintable() else _NOT_XML.sub("\ufffd", value)


class Clean(dict[str, Any]):
    """A body part built ready for JSON (mapping.song: 500 of them per sync page): no None values, strings
    already through clean_text, lists and dicts inside it clean too. The JSON renderer takes it as it is
    (datetimes go through json's `default`); the XML renderer reads it like any dict."""


def _scalar_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, str):
        return _text(value)
    return str(value)


def iso_time(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. 2026-12-02T00:55:43.000Z (written out: isoformat and replace
    cost 20 us a call, and a sync page has 500 of them)."""
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:{moment.minute:02d}:"
        f"{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _xml_element(name: str, body: Any, out: list[str]) -> None:
    if not isinstance(body, Mapping):
        out.append(f"<{name}>{escape(_scalar_text(body))}</{name}>")
        return
    attributes: list[str] = []
    children: list[str] = []
    text = None
    for key, value in body.items():
        if value is None:
            continue
        if key == "value" and not isinstance(value, (Mapping, list)):
            text = _scalar_text(value)
        elif isinstance(value, Mapping):
            _xml_element(key, value, children)
        elif isinstance(value, list):
            for item in value:
                if item is not None:
                    _xml_element(key, item, children)
        else:
            attributes.append(f" {key}={quoteattr(_scalar_text(value))}")
    head = name + "".join(attributes)
    if not children and text is None:
        out.append(f"<{head}/>")
    else:
        out.append(f"<{head}>{escape(text) if text is not None else ''}{''.join(children)}</{name}>")


def _json_value(value: Any) -> Any:
    """The tree as JSON values: None left out, strings cleaned, times in ISO 8601. Scalars are handled in the
    loop rather than by a call each: a 500-song page is ~20 000 of them (bench/subsonic.py)."""
    kind = type(value)
    if kind is Clean:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            item_kind = type(item)
            if item is None:
                continue
            if item_kind is str:
                out[key] = item if item.isprintable() else _text(item)
            elif item_kind is int or item_kind is bool or item_kind is float or item_kind is Clean:
                out[key] = item
            else:
                out[key] = _json_value(item)
        return out
    if kind is list:
        return [_json_value(item) for item in value if item is not None]
    if kind is str:
        return value if value.isprintable() else _text(value)
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, Mapping):
        return _json_value(dict(value))
    return value


def envelope(body: Mapping[str, Any] | None = None, *, error: SubsonicError | None = None) -> dict[str, Any]:
    tree: dict[str, Any] = {
        "status": "failed" if error else "ok",
        "version": API_VERSION,
        "type": SERVER_TYPE,
        "serverVersion": SERVER_VERSION,
        "openSubsonic": True,
    }
    if error is not None:
        tree["error"] = {"code": int(error.code), "message": error.message}
    if body:
        tree.update(body)
    return tree


def render(tree: Mapping[str, Any], *, fmt: Format, callback: str | None = None) -> HttpResponse:
    """The envelope `tree` as an HTTP 200 answer in the asked format (errors too: the spec's way)."""
    if fmt is Format.XML:
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
        root = dict(tree)
        out.append(f'<subsonic-response xmlns="{XML_NAMESPACE}"')
        body: list[str] = []
        for key, value in root.items():
            if isinstance(value, Mapping):
                _xml_element(key, value, body)
            elif isinstance(value, list):
                for item in value:
                    _xml_element(key, item, body)
            elif value is not None:
                out.append(f" {key}={quoteattr(_scalar_text(value))}")
        out.append(">" + "".join(body) + "</subsonic-response>")
        return HttpResponse("".join(out).encode(), content_type="text/xml; charset=utf-8")
    document = json.dumps(
        {"subsonic-response": _json_value(tree)}, ensure_ascii=False, separators=(",", ":"), default=_json_default
    )
    if fmt is Format.JSONP and callback and _JSONP_CALLBACK.fullmatch(callback):
        return HttpResponse(f"{callback}({document});".encode(), content_type="application/javascript; charset=utf-8")
    return HttpResponse(document.encode(), content_type="application/json; charset=utf-8")
