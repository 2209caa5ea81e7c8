"""OpenAPI generation: the error answers that come from the plumbing, documented on every operation.

The schema is a contract that CI fuzzes (tests/test_schema_fuzz.py fails on any status code the schema does
not list), so the answers that no view writes itself (bad parameters, no or a revoked token, a CSRF failure,
an object the caller may not see, a page past the last) are listed once here rather than on each view,
where one would be forgotten. A view documents its own answers (409, 429...) with `extend_schema`.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi

from apps.ops.errors import ErrorOutput

EVERY_OPERATION = {
    # Also Django's own 400 for a request it refuses before any view (a Host not in ALLOWED_HOSTS).
    "400": "Invalid input: `fields` names each bad parameter or body field; a malformed JSON body.",
    "401": "Not authenticated: no credentials, an unknown or revoked token (or wrong sign-in credentials).",
    "403": "Authenticated but not allowed (staff only), or a browser write without its CSRF token.",
}
NOT_FOUND = "No such object, or one the caller may not see (404, never 403: no existence leak); a page past the last."
UNSUPPORTED_MEDIA_TYPE = "The body is not `application/json`."
# Answered by gunicorn, nginx or Django's own server before the app sees the request: no JSON body.
URI_TOO_LONG = {"description": "Request line too long (refused by the server in front, without a JSON body)."}


class AutoSchema(openapi.AutoSchema):
    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:  # excluded from the schema
            return None
        errors = dict(EVERY_OPERATION)
        parameters = operation.get("parameters", [])
        # An object named in the path, or a page number: only these can be missing (a view that finds one
        # named in its body documents its 404 itself).
        if any(p["in"] == "path" or (p["in"] == "query" and p["name"] == "page") for p in parameters):
            errors["404"] = NOT_FOUND
        if "requestBody" in operation:
            errors["415"] = UNSUPPORTED_MEDIA_TYPE
        content = {"application/json": {"schema": self.resolve_serializer(ErrorOutput, "response").ref}}
        responses = operation["responses"]
        for code, description in errors.items():
            responses.setdefault(code, {"content": content, "description": description})
        responses.setdefault("414", URI_TOO_LONG)
        return operation
