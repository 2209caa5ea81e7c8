"""Who may manage a podcast library's subscriptions: one rule, used by services, selectors and the admin."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.accounts.types import RequestUser
from apps.library.models import Library, LibraryKind

PERMISSION = "podcasts.manage_subscriptions"


def manageable_libraries(user: RequestUser) -> QuerySet[Library]:
    """Staff: every podcast library; a user with the permission: the podcast libraries granted to them."""
    libraries = Library.objects.visible_to(user).filter(kind=LibraryKind.PODCAST)
    if not user.is_authenticated or not (user.is_staff or user.has_perm(PERMISSION)):
        return libraries.none()
    return libraries


def may_manage(user: RequestUser, library: Library) -> bool:
    return manageable_libraries(user).filter(pk=library.pk).exists()
