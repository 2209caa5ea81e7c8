from __future__ import annotations

import pytest

from apps.accounts.services import app_password_create
from apps.subsonic.auth import auth_cache_clear
from tests.factories import LibraryAccessFactory, UserFactory

# The podcast tests' local feed server, and their settings and task queue (autouse: cheap, and a podcast
# method may be called by any test here).
from tests.podcasts.conftest import _podcast_queue, _podcast_settings, feed_server  # noqa: F401, E402

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_remembered_sign_ins() -> None:
    """Sign-ins are remembered per process for a few seconds, by credentials: the next test's user of the
    same name and password is another row (rolled back rows send no signal)."""
    auth_cache_clear()


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
