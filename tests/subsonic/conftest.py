from __future__ import annotations

import pytest

from apps.accounts.services import app_password_create
from tests.factories import LibraryAccessFactory, UserFactory

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    """Django's real hasher is slow on purpose; these tests sign in many times."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def listener(db):
    return UserFactory(username="listener", password=PASSWORD)


@pytest.fixture
def app_password(listener) -> str:
    return app_password_create(user=listener, name="phone")[1]


def grant(user, library) -> None:
    LibraryAccessFactory(user=user, library=library)
