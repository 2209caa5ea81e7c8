"""`/art/...` when nginx is not in front (embedded mode, tests): the same signature check as nginx's secure_link
and the same answers (403 bad signature, 410 expired, 404 anything else), then the variant file. Behind nginx
this view is never reached (deploy/nginx/snippets/revenge-locations.conf)."""

from __future__ import annotations

import re

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe

from apps.library.artwork.storage import FORMATS, ArtworkStorage
from apps.ops.errors import error_response
from apps.ops.http import file_response, normalize_path

IMMUTABLE = "public, max-age=31536000, immutable"
CONTENT_TYPES = {"webp": FORMATS["webp"], "jpg": FORMATS["jpeg"]}
# After normalisation: art/<expires>/<signature>/<hash>/<size>.<ext>, every part matched strictly (the same
# pattern as nginx's location), so no path built from the URL can leave the artwork root.
_ART_PATH = re.compile(
    r"art/(?P<expires>[0-9]{1,12})/(?P<signature>[A-Za-z0-9_-]{1,64}={0,2})/(?P<hash>[0-9a-f]{64})"
    r"/(?P<name>(?:64|128|300|600|original)\.(?P<ext>webp|jpg))"
)


@require_safe
def art_file(request: HttpRequest) -> HttpResponseBase:
    path = normalize_path(request.path_info)
    if path is None:
        return error_response(400, "bad_request", "Malformed path.")
    match = _ART_PATH.fullmatch(path)
    if match is None:
        return error_response(404, "not_found", "Not found.")
    status = ArtworkStorage.check(expires=match["expires"], signature=match["signature"], content_hash=match["hash"])
    if status == 403:
        return error_response(403, "forbidden", "Bad signature.")
    if status == 410:
        return error_response(410, "expired", "This link has expired; ask for the cover again.")
    file = ArtworkStorage.from_settings().file(match["hash"], match["name"])
    try:
        response = file_response(
            request,
            parts=[file],
            content_type=CONTENT_TYPES[match["ext"]],
            cache_control=IMMUTABLE,
            etag=match["hash"],  # the image's content hash, as nginx's location sends it
        )
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return error_response(404, "not_found", "Not found.")
    response["Access-Control-Allow-Origin"] = "*"
    return response
