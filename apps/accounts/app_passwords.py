"""The pure parts of app passwords: generating one, encrypting it at rest, checking a Subsonic token.

No ORM here (services.py stores and looks up the rows). Fernet (AES-128-CBC + HMAC-SHA256, from the
`cryptography` package) under APP_PASSWORD_KEY (else a key generated into the data folder), which is not SECRET_KEY: see
settings._app_password_key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from revenge.keys import key_file_read_or_create

# Lower-case letters and digits without the look-alikes (0/o, 1/l/i): typed on a phone keyboard, often.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUPS = 4
GROUP_LENGTH = 5  # 20 characters of 31 symbols: 99 bits, out of reach of online guessing and of md5 tables


def app_password_generate() -> str:
    """e.g. `k7dqa-m3xzp-9wheu-tb4rn`."""
    return "-".join("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LENGTH)) for _ in range(GROUPS))


@cache
def _fernet(key: str) -> Fernet:
    return Fernet(key.encode())


def _key() -> str:
    """APP_PASSWORD_KEY, else the key generated once into APP_PASSWORD_KEY_FILE (read once per process)."""
    return settings.APP_PASSWORD_KEY or _generated_key(settings.APP_PASSWORD_KEY_FILE)


@cache
def _generated_key(path: Path) -> str:
    return key_file_read_or_create(path, lambda: Fernet.generate_key().decode())


def encrypt(password: str) -> bytes:
    return _fernet(_key()).encrypt(password.encode())


def decrypt(ciphertext: bytes | memoryview) -> str | None:
    """The clear password, or None when it was encrypted under another key (APP_PASSWORD_KEY changed)."""
    try:
        return _fernet(_key()).decrypt(bytes(ciphertext)).decode()
    except InvalidToken:
        return None


def token_matches(*, password: str, token: str, salt: str) -> bool:
    """Subsonic's token auth: token = md5(password + salt), in hex. Compared in constant time."""
    expected = hashlib.md5((password + salt).encode(), usedforsecurity=False).hexdigest()
    return hmac.compare_digest(expected, token.lower())
