"""The user types that services and selectors take, named once.

AUTH_USER_MODEL is Django's own `User`. A request's user is that or, before sign-in, `AnonymousUser`:
selectors take either (an anonymous user sees nothing), services that write on someone's behalf take `User`
(a view narrows `request.user` to it once it is known to be signed in).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from rest_framework import exceptions
from rest_framework.request import Request

RequestUser = User | AnonymousUser


def signed_in(request: Request) -> User:
    """The user a write is made for: the API's default permission (signed in) lets no one else this far."""
    user = request.user
    if not isinstance(user, User):
        raise exceptions.NotAuthenticated()
    return user


__all__ = ["RequestUser", "User", "signed_in"]
