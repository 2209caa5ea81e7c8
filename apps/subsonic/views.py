"""`/rest/<method>` and `/rest/<method>.view`: GET, or POST with a form body (formPost)."""

from __future__ import annotations

from django.http import Http404, HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from apps.ops.errors import DomainError
from apps.subsonic import endpoints  # noqa: F401  (registers the methods)
from apps.subsonic.auth import RestCaller, rest_caller
from apps.subsonic.params import Params
from apps.subsonic.registry import METHODS, Call
from apps.subsonic.response import ErrorCode, SubsonicError, envelope, render, response_format

_DOMAIN_CODES = {400: ErrorCode.MISSING_PARAMETER, 403: ErrorCode.NOT_AUTHORIZED, 404: ErrorCode.NOT_FOUND}


# Exempt from CSRF: nothing here reads the session cookie (credentials travel in the parameters), so a
# cross-site form post carries nothing a page could not send itself.
@csrf_exempt
def rest(request: HttpRequest, method: str) -> HttpResponseBase:
    params = Params(request)
    fmt = response_format(params.get("f"))
    callback = params.get("callback")
    found = METHODS.get(method)
    if found is None:
        # A Subsonic error, not an HTML page: clients show its message.
        response = render(
            envelope(error=SubsonicError(ErrorCode.GENERIC, f"Unknown method: {method[:100]}")),
            fmt=fmt,
            callback=callback,
        )
        response.status_code = 404
        return response
    try:
        caller = rest_caller(request, params) if found.auth else _anonymous()
        answer = found.handler(Call(method=method, request=request, params=params, caller=caller))
    except SubsonicError as error:
        return render(envelope(error=error), fmt=fmt, callback=callback)
    except Http404:
        return render(envelope(error=SubsonicError(ErrorCode.NOT_FOUND, "Data not found")), fmt=fmt, callback=callback)
    except DomainError as error:
        # A service's refusal, in the spec's terms: what the user may not see is "not found", what they may
        # only read is "not authorized", bad input (a position past the end) a parameter error.
        detail = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in (error.fields or {}).items())
        message = f"{error.message} {detail}".strip()
        code = _DOMAIN_CODES.get(error.status_code, ErrorCode.GENERIC)
        return render(envelope(error=SubsonicError(code, message)), fmt=fmt, callback=callback)
    if isinstance(answer, HttpResponseBase):
        return answer
    return render(envelope(answer), fmt=fmt, callback=callback)


def _anonymous() -> RestCaller:
    return None  # type: ignore[return-value]  # only methods registered with auth=False run without one
