from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Django's real hasher is slow on purpose; every test here makes users (UserFactory sets a password)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
