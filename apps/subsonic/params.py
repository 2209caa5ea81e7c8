"""A request's parameters: the query string and, for POST (the formPost extension), the form body, merged;
parsed with the spec's error for a missing or malformed one (10), never a 500."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.datastructures import MultiValueDict

from apps.subsonic.response import ErrorCode, SubsonicError, missing

# The spec caps list sizes at 500 (getAlbumList2, getRandomSongs); we cap every count at it, so
# `count=1000000000` is 500 rows, not an error and not a server-sized answer.
MAX_COUNT = 500
_INT_LIMIT = 2**63 - 1


class Params:
    def __init__(self, request: HttpRequest) -> None:
        merged: MultiValueDict[str, str] = MultiValueDict()
        for source in (request.GET, request.POST if request.method == "POST" else None):
            if source is None:
                continue
            for key, values in source.lists():
                for value in values:
                    merged.appendlist(key, value)
        self._values = merged

    def get(self, name: str) -> str | None:
        value = self._values.get(name)
        return value if value is None else _text(name, value)

    def values(self, name: str) -> list[str]:
        return [_text(name, value) for value in self._values.getlist(name)]

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def number(
        self, name: str, default: int | None = None, *, minimum: int = 0, maximum: int = _INT_LIMIT
    ) -> int | None:
        value = self.get(name)
        if value is None or value == "":
            return default
        return _to_int(name, value, minimum=minimum, maximum=maximum)

    def require_number(self, name: str, *, minimum: int = 0, maximum: int = _INT_LIMIT) -> int:
        return _to_int(name, self.require(name), minimum=minimum, maximum=maximum)

    def count(self, name: str, default: int) -> int:
        """A page size: absent → default, above MAX_COUNT → MAX_COUNT, negative or not a number → 10."""
        value = self.number(name, default)
        return min(MAX_COUNT, default if value is None else value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name)
        if value is None or value == "":
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"Parameter {name} is not true or false: {value[:50]!r}")


def _text(name: str, value: object) -> str:
    # PostgreSQL text cannot hold NUL: refused here, once, rather than as a database error in some query.
    text = str(value)
    if "\x00" in text:
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"Parameter {name} contains a NUL character.")
    return text


def _to_int(name: str, value: str, *, minimum: int, maximum: int) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"Parameter {name} is not a number: {value[:50]!r}") from None
    if number < minimum:
        raise SubsonicError(ErrorCode.MISSING_PARAMETER, f"Parameter {name} must be at least {minimum}.")
    # Above the maximum is clamped, not refused: counts and offsets past the end simply find nothing.
    return min(number, maximum)
