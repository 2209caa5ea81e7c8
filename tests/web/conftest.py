from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tests.web.test_pages import PASSWORD


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Django's real hasher is slow on purpose; these tests sign in dozens of times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def listener():
    return get_user_model().objects.create_user("listener", password=PASSWORD)
