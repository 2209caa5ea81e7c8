"""The API's JSON parser: every body json cannot read is a 400 in the usual error format.

DRF's JSONParser turns only ValueError into a ParseError; a body nested deeper than the interpreter's
recursion limit (`'[' * 1000 + ']' * 1000`, 2 KB) raises RecursionError from the C scanner, which became a
500 on every endpoint that reads a body, the unauthenticated sign-in included.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
