"""`/hls/...` when nginx is not in front (embedded mode, tests): the same signature check as nginx's
secure_link, then the file. Behind nginx this view is never reached (see deploy/nginx)."""

from __future__ import annotations

import re

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_safe

from apps.ops.errors import error_response
from apps.ops.http import file_response, normalize_path
from apps.streaming.services import rendition_folder_lost
from apps.streaming.signing import hls_check
from apps.streaming.storage import LIVE_PLAYLIST_NAME, RenditionStorage

IMMUTABLE = "public, max-age=31536000, immutable"
# A growing rendition's live playlist changes until its EXT-X-ENDLIST: revalidated on every load (as nginx).
GROWING = "no-cache"
CONTENT_TYPES = {"m3u8": "application/vnd.apple.mpegurl", "mp4": "audio/mp4", "m4s": "audio/mp4", "ts": "video/mp2t"}
# After normalisation: /hls/<expires>/<signature>/<track>/<rendition_key>/<profile>/<file>. Every part is
# matched strictly, so no path built from the URL can leave the renditions root.
_HLS_PATH = re.compile(
    r"hls/(?P<expires>[0-9]{1,12})/(?P<signature>[A-Za-z0-9_-]{1,64}={0,2})/(?P<track>[0-9]{1,18})"
    r"/(?P<key>[0-9a-f]{16})/(?P<profile>[a-z0-9-]{1,32})"
    r"/(?P<name>(?:index|live)\.m3u8|init\.mp4|seg[0-9]{5,9}\.(?:m4s|ts))"
)


@require_safe
def hls_file(request: HttpRequest) -> HttpResponseBase:
    path = normalize_path(request.path_info)
    if path is None:
        return error_response(400, "bad_request", "Malformed path.")
    match = _HLS_PATH.fullmatch(path)
    if match is None:
        return error_response(404, "not_found", "Not found.")
    track, key = match["track"], match["key"]
    check = hls_check(expires=match["expires"], signature=match["signature"], track=track, rendition_key=key)
    if check.status == 403:
        return error_response(403, "forbidden", "Bad signature.")
    if check.status == 410:
        return error_response(410, "expired", "This link has expired; ask for the stream again.")
    # The folder as the URL spells it, as nginx's alias does: "045" is not the folder of track 45.
    storage = RenditionStorage.from_settings()
    file = storage.file(track, key, match["profile"], match["name"])
    try:
        response = file_response(
            request,
            parts=[file],
            content_type=CONTENT_TYPES[file.suffix[1:]],
            cache_control=GROWING if file.name == LIVE_PLAYLIST_NAME else IMMUTABLE,
        )
    except (FileNotFoundError, NotADirectoryError, ValueError):
        if track == str(int(track)) and storage.is_lost(track, key):
            rendition_folder_lost(track_id=int(track), rendition_key=key)
        return error_response(404, "not_found", "Not found.")
    response["Access-Control-Allow-Origin"] = "*"  # web players on other origins (signed anyway)
    return response
