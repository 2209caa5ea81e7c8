"""The methods of /rest/, by name: each endpoint module registers its functions here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from apps.subsonic.auth import RestCaller
from apps.subsonic.params import Params


@dataclass(frozen=True)
class Call:
    method: str
    request: HttpRequest
    params: Params
    caller: RestCaller

    @property
    def user(self) -> Any:
        return self.caller.user


# A method answers the body of the envelope (a dict) or a whole response of its own (media).
Handler = Callable[[Call], "dict[str, Any] | HttpResponseBase"]


@dataclass(frozen=True)
class Method:
    handler: Handler
    auth: bool


METHODS: dict[str, Method] = {}


def endpoint(*names: str, auth: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in names:
            METHODS[name] = Method(handler=handler, auth=auth)
        return handler

    return register
