"""Small formatting filters for the web player's templates."""

from __future__ import annotations

from django import template

register = template.Library()

TILE_COLOURS = 8


@register.filter
def duration(milliseconds: int | None) -> str:
    """3:05, or 1:02:03 from an hour on (what the player shows too)."""
    total_s = max(0, int(milliseconds or 0) // 1000)
    hours, rest = divmod(total_s, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


@register.filter
def tile(key: int | None) -> str:
    """A colour class for a placeholder cover, stable per id (classes, because the CSP forbids style="")."""
    return f"tile-{int(key or 0) % TILE_COLOURS}"


@register.filter
def initials(title: str) -> str:
    words = [word for word in (title or "").split() if word[:1].isalnum()]
    return "".join(word[0] for word in words[:2]).upper() or "♪"


@register.filter
def percent(fraction: float | None) -> int:
    return round(float(fraction or 0) * 100)
