"""apps.ops.signing: nginx's secure_link_md5 scheme, the one copy /hls/ and /art/ both sign with."""

from __future__ import annotations

import base64
import hashlib

from apps.ops.signing import LinkCheck, secure_link_check, secure_link_expiry, secure_link_signature


def test_signature_is_nginx_md5_form_over_expiry_resource_and_secret():
    expected = base64.urlsafe_b64encode(hashlib.md5(b"1700000000/ab12/cd s3cret").digest()).decode().rstrip("=")
    assert secure_link_signature(expires=1700000000, resource="ab12/cd", secret="s3cret") == expected
    assert len(expected) == 22


def test_check_verdicts():
    sig = secure_link_signature(expires=2000, resource="x", secret="k")
    assert secure_link_check(expires="2000", signature=sig, resource="x", secret="k", now=1999) == LinkCheck(True, 200)
    assert secure_link_check(expires="2000", signature=sig + "==", resource="x", secret="k", now=1999).ok
    assert secure_link_check(expires="2000", signature=sig, resource="x", secret="k", now=2001) == LinkCheck(False, 410)
    assert secure_link_check(expires="02000", signature=sig, resource="x", secret="k", now=0).status == 403
    assert secure_link_check(expires="2000", signature=sig, resource="y", secret="k", now=0).status == 403
    assert secure_link_check(expires="2000", signature=sig, resource="x", secret="j", now=0).status == 403
    assert secure_link_check(expires="2000", signature="!!", resource="x", secret="k", now=0).status == 403


def test_expiry_rounds_up_to_the_step():
    assert secure_link_expiry(lifetime_s=100, step_s=60, now=1000) == 1140
    assert secure_link_expiry(lifetime_s=86400, step_s=86400, now=86400 * 3 + 5) == 86400 * 5
