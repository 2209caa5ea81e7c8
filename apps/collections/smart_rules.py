"""Smart playlist rules: the documented JSON schema, checked without the database.

```json
{"all": [{"field": "genre", "op": "is", "value": "Jazz"},
         {"any": [{"field": "year", "op": "between", "value": [1955, 1965]},
                  {"field": "rating", "op": "gt", "value": 3}]}],
 "order": "-added", "limit": 100}
```

The top level is a group (`all` or `any`, a list of nodes) with optional `order` and `limit`; a node is a
group or a condition `{"field", "op", "value"}`. Fields, their operators and values are in FIELDS below
(README, Smart playlists). Bounds, so a hostile rule costs nothing: nesting ≤ MAX_DEPTH groups, ≤ MAX_NODES
nodes, texts ≤ MAX_TEXT characters, `limit` 1…MAX_LIMIT. Texts are matched literally (`contains` of
`.*` or `%` finds those characters, never a pattern). A bad rule raises RuleError with the path of the bad
node, e.g. `rules.all[1].any[0].value`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_DEPTH = 5
MAX_NODES = 100
MAX_TEXT = 200
MAX_LIMIT = 5000
MAX_DAYS = 100 * 366


class Kind(StrEnum):
    TEXT = "text"
    NAMES = "names"  # a text matched against a list of names (artists, genres)
    INTEGER = "integer"
    SECONDS = "seconds"
    DATE = "date"
    BOOLEAN = "boolean"
    RATING = "rating"
    CHOICE = "choice"


TEXT_OPS = ("is", "contains", "starts_with")
NUMBER_OPS = ("is", "gt", "lt", "between")
DATE_OPS = ("in_the_last", "gt", "lt", "between")
LIBRARY_KINDS = ("music", "audiobook", "podcast")

# field → (kind, operators). `last_played`, `play_count` and `in_progress` are the user's own (playback
# progress); `rating` and `favourite` their marks; `kind` the library's kind.
FIELDS: dict[str, tuple[Kind, tuple[str, ...]]] = {
    "title": (Kind.TEXT, TEXT_OPS),
    "artist": (Kind.NAMES, TEXT_OPS),
    "album": (Kind.TEXT, TEXT_OPS),
    "genre": (Kind.NAMES, TEXT_OPS),
    "year": (Kind.INTEGER, NUMBER_OPS),
    "duration": (Kind.SECONDS, NUMBER_OPS),
    "added": (Kind.DATE, DATE_OPS),
    "last_played": (Kind.DATE, DATE_OPS),
    "play_count": (Kind.INTEGER, NUMBER_OPS),
    "rating": (Kind.RATING, NUMBER_OPS),
    "favourite": (Kind.BOOLEAN, ("is",)),
    "in_progress": (Kind.BOOLEAN, ("is",)),
    "library": (Kind.INTEGER, ("is",)),
    "kind": (Kind.CHOICE, ("is",)),
}
ORDERS = (
    "title",
    "artist",
    "album",
    "year",
    "duration",
    "added",
    "last_played",
    "play_count",
    "rating",
    "favourited",
    "random",
)


class RuleError(ValueError):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any  # checked and converted: str, int, float seconds, date, bool, or a (low, high) pair


@dataclass(frozen=True)
class Group:
    match: str  # "all" | "any"
    nodes: tuple[Condition | Group, ...]


@dataclass(frozen=True)
class Rules:
    root: Group
    order: str | None  # one of ORDERS, "-" first for descending
    limit: int | None

    def fields(self) -> set[str]:
        found: set[str] = set()
        stack: list[Condition | Group] = [self.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Group):
                stack.extend(node.nodes)
            else:
                found.add(node.field)
        if self.order:
            found.add(self.order.lstrip("-"))
        return found


def rules_parse(data: Any, *, path: str = "rules") -> Rules:
    """Check `data` against the schema and return it typed; RuleError names the first bad node."""
    if not isinstance(data, dict):
        raise RuleError(path, "Expected an object with `all` or `any`.")
    unknown = sorted(set(data) - {"all", "any", "order", "limit"})
    if unknown:
        raise RuleError(f"{path}.{unknown[0]}", "Unknown key; expected all, any, order, limit.")
    counter = [0]
    root = _group({key: data[key] for key in ("all", "any") if key in data}, path, depth=1, counter=counter)
    order = data.get("order")
    if order is not None and (not isinstance(order, str) or order.lstrip("-") not in ORDERS or order.count("-") > 1):
        raise RuleError(f"{path}.order", f"Expected one of {', '.join(ORDERS)}, '-' first for descending.")
    limit = data.get("limit")
    if limit is not None and (type(limit) is not int or not 1 <= limit <= MAX_LIMIT):
        raise RuleError(f"{path}.limit", f"Expected a whole number from 1 to {MAX_LIMIT}.")
    return Rules(root=root, order=order, limit=limit)


def _group(data: dict[str, Any], path: str, *, depth: int, counter: list[int]) -> Group:
    if len(data) != 1:
        raise RuleError(path, "Expected exactly one of `all` or `any`.")
    ((match, nodes),) = data.items()
    path = f"{path}.{match}"
    if depth > MAX_DEPTH:
        raise RuleError(path, f"Groups nest at most {MAX_DEPTH} deep.")
    if not isinstance(nodes, list):
        raise RuleError(path, "Expected a list of conditions and groups.")
    parsed: list[Condition | Group] = []
    for index, node in enumerate(nodes):
        counter[0] += 1
        node_path = f"{path}[{index}]"
        if counter[0] > MAX_NODES:
            raise RuleError(node_path, f"At most {MAX_NODES} conditions and groups in all.")
        if not isinstance(node, dict):
            raise RuleError(node_path, "Expected an object: a condition or a group.")
        if "field" in node or "op" in node:
            parsed.append(_condition(node, node_path))
        else:
            unknown = sorted(set(node) - {"all", "any"})
            if unknown:
                raise RuleError(f"{node_path}.{unknown[0]}", "Unknown key; expected field/op/value, all or any.")
            parsed.append(_group(node, node_path, depth=depth + 1, counter=counter))
    return Group(match=match, nodes=tuple(parsed))


def _condition(node: dict[str, Any], path: str) -> Condition:
    unknown = sorted(set(node) - {"field", "op", "value"})
    if unknown:
        raise RuleError(f"{path}.{unknown[0]}", "Unknown key; expected field, op, value.")
    field = node.get("field")
    if not isinstance(field, str) or field not in FIELDS:
        raise RuleError(f"{path}.field", f"Unknown field; expected one of {', '.join(FIELDS)}.")
    kind, ops = FIELDS[field]
    op = node.get("op")
    if not isinstance(op, str) or op not in ops:
        raise RuleError(f"{path}.op", f"For {field}, expected one of {', '.join(ops)}.")
    if "value" not in node:
        raise RuleError(f"{path}.value", "Missing.")
    value_path = f"{path}.value"
    value = node["value"]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(value_path, "Expected [low, high].")
        low, high = (_value(kind, item, f"{value_path}[{i}]") for i, item in enumerate(value))
        if low > high:
            raise RuleError(value_path, "The low end is above the high end.")
        return Condition(field=field, op=op, value=(low, high))
    if op == "in_the_last":
        if type(value) is not int or not 1 <= value <= MAX_DAYS:
            raise RuleError(value_path, f"Expected a number of days from 1 to {MAX_DAYS}.")
        return Condition(field=field, op=op, value=value)
    if kind is Kind.CHOICE and value not in LIBRARY_KINDS:
        raise RuleError(value_path, f"Expected one of {', '.join(LIBRARY_KINDS)}.")
    return Condition(field=field, op=op, value=_value(kind, value, value_path))


def _value(kind: Kind, value: Any, path: str) -> Any:
    if kind in (Kind.TEXT, Kind.NAMES, Kind.CHOICE):
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise RuleError(path, f"Expected a text of 1 to {MAX_TEXT} characters.")
        if any(ord(character) < 32 for character in value):
            raise RuleError(path, "Control characters are not allowed.")
        return value
    if kind is Kind.BOOLEAN:
        if type(value) is not bool:
            raise RuleError(path, "Expected true or false.")
        return value
    if kind is Kind.DATE:
        if not isinstance(value, str):
            raise RuleError(path, "Expected a date, YYYY-MM-DD.")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise RuleError(path, "Expected a date, YYYY-MM-DD.") from None
    if kind is Kind.SECONDS:
        if type(value) not in (int, float) or not 0 <= value <= 10**7:
            raise RuleError(path, "Expected a number of seconds from 0 to 10000000.")
        return float(value)
    if kind is Kind.RATING:
        if type(value) is not int or not 0 <= value <= 5:
            raise RuleError(path, "Expected 0 (not rated) to 5.")
        return value
    if type(value) is not int or not 0 <= value <= 2**31 - 1:
        raise RuleError(path, "Expected a whole number from 0.")
    return value


# The built-in smart playlists every user has (slug → name, rules), read like any other.
BUILTINS: dict[str, tuple[str, dict[str, Any]]] = {
    "recently-added": (
        "Recently added",
        {"all": [{"field": "added", "op": "in_the_last", "value": 30}], "order": "-added", "limit": 500},
    ),
    "most-played": (
        "Most played",
        {"all": [{"field": "play_count", "op": "gt", "value": 0}], "order": "-play_count", "limit": 100},
    ),
    "never-played": (
        "Never played",
        {
            "all": [{"field": "play_count", "op": "is", "value": 0}, {"field": "kind", "op": "is", "value": "music"}],
            "order": "-added",
            "limit": 500,
        },
    ),  # fmt: skip
    "favourites": ("Favourites", {"all": [{"field": "favourite", "op": "is", "value": True}], "order": "-favourited"}),
    "books-in-progress": (
        "Books in progress",
        {
            "all": [
                {"field": "kind", "op": "is", "value": "audiobook"},
                {"field": "in_progress", "op": "is", "value": True},
            ],
            "order": "-last_played",
        },
    ),  # fmt: skip
}
