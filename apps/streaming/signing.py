"""Signed URLs.

`/hls/<expires>/<signature>/<track>/<rendition_key>/...` is nginx's secure_link scheme, so nginx can check it
without Python: signature = base64url(md5("<expires>/<track>/<rendition_key> <secret>")), unpadded, i.e.
`secure_link $hls_signature,$hls_expires; secure_link_md5 "$hls_expires/$hls_track/$hls_key $hls_secret";`.
One signature covers a whole rendition folder, because media playlists use relative segment URIs; the prefix
itself is built where the layout lives (storage.RenditionStorage.url_prefix).

The master playlist and direct-play URLs handed out by the stream decision carry a Django-signed `token`
(user, track, time) instead, so that players which cannot send an Authorization header (ffmpeg, <audio>,
AVPlayer) can open them; the user's access is checked again on every use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import NamedTuple

from django.conf import settings
from django.core import signing

_TOKEN_SALT = "revenge.streaming.token"


def _digest(expires: str, track: str, rendition_key: str) -> bytes:
    # Over the text as it appears in the URL, as nginx's secure_link_md5 does with its captures: "0123" and
    # "123" are different material, so a URL with a zero added to its expiry or track is a bad signature for
    # both servers (it used to be read as the same number here, and pass).
    material = f"{expires}/{track}/{rendition_key} {settings.HLS_SIGNING_SECRET}".encode()
    return hashlib.md5(material, usedforsecurity=False).digest()


def hls_signature(*, expires: int, track_id: int, rendition_key: str) -> str:
    digest = _digest(str(expires), str(track_id), rendition_key)
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def hls_expiry(now: float | None = None) -> int:
    """Expiry of URLs signed now, rounded up to the minute: playlists fetched within the same minute are
    byte-identical (cacheable), and a URL lives at least HLS_URL_LIFETIME."""
    now = time.time() if now is None else now
    return (int(now + settings.HLS_URL_LIFETIME_S) // 60 + 1) * 60


class HlsCheck(NamedTuple):
    ok: bool
    status: int  # 200, or the answer to give: 403 bad signature, 410 expired


def hls_check(*, expires: str, signature: str, track: str, rendition_key: str, now: float | None = None) -> HlsCheck:
    """The same verdicts as nginx's secure_link: a wrong signature is 403 whatever the expiry, a right one
    that has expired is 410. `expires` and `track` are the digits as the URL spells them."""
    expected = _digest(expires, track, rendition_key)
    # Compared as bytes, as nginx does: it decodes the base64url text (the last of the 22 characters
    # carries 2 bits, the other 4 are ignored), so both accept and refuse exactly the same URLs.
    try:
        given = base64.urlsafe_b64decode(signature.rstrip("=") + "==")
    except (binascii.Error, ValueError):
        return HlsCheck(False, 403)
    if not hmac.compare_digest(expected, given):
        return HlsCheck(False, 403)
    if int(expires) < (time.time() if now is None else now):
        return HlsCheck(False, 410)
    return HlsCheck(True, 200)


def stream_token(*, user_id: int, track_id: int) -> str:
    return signing.dumps([user_id, track_id], salt=_TOKEN_SALT, compress=False)


def stream_token_user_id(token: str, *, track_id: int) -> int | None:
    """The user a token was issued to for this track, or None (bad, expired or for another track)."""
    try:
        user_id, signed_track_id = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.HLS_URL_LIFETIME_S)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return user_id if signed_track_id == track_id else None
