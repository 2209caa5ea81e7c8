"""nginx's `secure_link` scheme, the one signing primitive for every signed media prefix (`/hls/`, `/art/`).

signature = base64url(md5("<expires>/<resource> <secret>")), unpadded: what nginx computes from
`secure_link_md5 "$expires/<resource captures> $secret"`, so nginx can check a URL without Python and a Django
fallback view can give the very same verdicts. Each app says what its resource is (a rendition folder, an
artwork hash); this module knows nothing of them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import NamedTuple


def _digest(expires: str, resource: str, secret: str) -> bytes:
    # Over the text as it appears in the URL, as nginx's secure_link_md5 does with its captures: "0123" and
    # "123" are different material, so a URL with a zero added to its expiry is a bad signature for both.
    return hashlib.md5(f"{expires}/{resource} {secret}".encode(), usedforsecurity=False).digest()


def secure_link_signature(*, expires: int | str, resource: str, secret: str) -> str:
    return base64.urlsafe_b64encode(_digest(str(expires), resource, secret)).decode().rstrip("=")


def secure_link_expiry(*, lifetime_s: int, step_s: int = 60, now: float | None = None) -> int:
    """Expiry of URLs signed now, rounded up to `step_s`: URLs signed within the same step are identical
    (cacheable), and each lives at least `lifetime_s`."""
    now = time.time() if now is None else now
    return (int(now + lifetime_s) // step_s + 1) * step_s


class LinkCheck(NamedTuple):
    ok: bool
    status: int  # 200, or the answer to give: 403 bad signature, 410 expired


def secure_link_check(
    *, expires: str, signature: str, resource: str, secret: str, now: float | None = None
) -> LinkCheck:
    """The same verdicts as nginx's secure_link: a wrong signature is 403 whatever the expiry, a right one
    that has expired is 410. `expires` is the digits as the URL spells them."""
    expected = _digest(expires, resource, secret)
    # Compared as bytes, as nginx does: it decodes the base64url text (the last of the 22 characters
    # carries 2 bits, the other 4 are ignored), so both accept and refuse exactly the same URLs.
    try:
        given = base64.urlsafe_b64decode(signature.rstrip("=") + "==")
    except (binascii.Error, ValueError):
        return LinkCheck(False, 403)
    if not hmac.compare_digest(expected, given):
        return LinkCheck(False, 403)
    if int(expires) < (time.time() if now is None else now):
        return LinkCheck(False, 410)
    return LinkCheck(True, 200)
