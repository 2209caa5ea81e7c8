"""The user types that services and selectors take, named once.

AUTH_USER_MODEL is Django's own `User`. A request's user is that or, before sign-in, `AnonymousUser`:
selectors take either (an anonymous user sees nothing), services that write on someone's behalf take `User`
(a view narrows `request.user` to it once it is known to be signed in).
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

RequestUser = User | AnonymousUser

__all__ = ["RequestUser", "User"]
