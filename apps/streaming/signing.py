"""Signed URLs.

`/hls/<expires>/<signature>/<track>/<rendition_key>/...` is nginx's secure_link scheme, so nginx can check it
without Python: signature = base64url(md5("<expires>/<track>/<rendition_key> <secret>")), unpadded, i.e.
`secure_link $hls_signature,$hls_expires; secure_link_md5 "$hls_expires/$hls_track/$hls_key $hls_secret";`
(the primitive is apps.ops.signing, shared with the `/art/` prefix).
One signature covers a whole rendition folder, because media playlists use relative segment URIs; the prefix
itself is built where the layout lives (storage.RenditionStorage.url_prefix).

The master playlist and direct-play URLs handed out by the stream decision carry a Django-signed `token`
(user, track, time) instead, so that players which cannot send an Authorization header (ffmpeg, <audio>,
AVPlayer) can open them; the user's access is checked again on every use.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing

from apps.ops.signing import LinkCheck, secure_link_check, secure_link_expiry, secure_link_signature

_TOKEN_SALT = "revenge.streaming.token"

# The verdict type of hls_check (apps.ops.signing owns the scheme, shared with /art/).
HlsCheck = LinkCheck


def hls_signature(*, expires: int, track_id: int, rendition_key: str) -> str:
    return secure_link_signature(
        expires=expires, resource=f"{track_id}/{rendition_key}", secret=settings.HLS_SIGNING_SECRET
    )


def hls_expiry(now: float | None = None) -> int:
    """Expiry of URLs signed now, rounded up to the minute: playlists fetched within the same minute are
    byte-identical (cacheable), and a URL lives at least HLS_URL_LIFETIME."""
    return secure_link_expiry(lifetime_s=settings.HLS_URL_LIFETIME_S, now=now)


def hls_check(*, expires: str, signature: str, track: str, rendition_key: str, now: float | None = None) -> HlsCheck:
    """The same verdicts as nginx's secure_link (apps.ops.signing): 403 bad signature, 410 expired. `expires`
    and `track` are the digits as the URL spells them: "045" is not track 45's material."""
    return secure_link_check(
        expires=expires,
        signature=signature,
        resource=f"{track}/{rendition_key}",
        secret=settings.HLS_SIGNING_SECRET,
        now=now,
    )


def stream_token(*, user_id: int, track_id: int) -> str:
    return signing.dumps([user_id, track_id], salt=_TOKEN_SALT, compress=False)


def stream_token_user_id(token: str, *, track_id: int) -> int | None:
    """The user a token was issued to for this track, or None (bad, expired or for another track)."""
    try:
        user_id, signed_track_id = signing.loads(token, salt=_TOKEN_SALT, max_age=settings.HLS_URL_LIFETIME_S)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return user_id if signed_track_id == track_id else None
