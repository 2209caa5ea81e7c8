"""Smart playlists: stored only once their rules pass the schema (a bad rule: DomainError whose field is the
path of the bad node, e.g. `rules.all[1].value`)."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from apps.accounts.types import User
from apps.collections.models import SmartPlaylist
from apps.collections.smart_rules import RuleError, Rules, rules_parse
from apps.ops.errors import DomainError


def smart_rules_check(*, rules: Any) -> Rules:
    """The rules, typed; a DomainError (400) naming the path of the first bad node."""
    try:
        return rules_parse(rules)
    except RuleError as exc:
        raise DomainError(
            f"Bad rule at {exc.path}: {exc.message}", code="invalid_rules", fields={exc.path: [exc.message]}
        ) from None


def smart_playlist_create(*, owner: User, name: str, rules: Any) -> SmartPlaylist:
    smart_rules_check(rules=rules)
    return SmartPlaylist.objects.create(owner=owner, name=name, rules=rules)


def smart_playlist_update(
    *, user: User, smart_playlist_id: int, name: str | None = None, rules: Any = None
) -> SmartPlaylist:
    smart = _own(user, smart_playlist_id)
    if rules is not None:
        smart_rules_check(rules=rules)
        smart.rules = rules
    if name is not None:
        smart.name = name
    smart.save()
    return smart


def smart_playlist_delete(*, user: User, smart_playlist_id: int) -> None:
    _own(user, smart_playlist_id).delete()


def _own(user: User, smart_playlist_id: int) -> SmartPlaylist:
    smart = SmartPlaylist.objects.filter(owner=user, pk=smart_playlist_id).first()
    if smart is None:
        raise Http404("No such smart playlist.")
    return smart
