"""Small formatting filters for the web player's templates."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from apps.library.artwork.storage import SIZES, ArtworkStorage

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


# What the browser picks from for each place a cover is shown (CSS pixels; it multiplies by the screen's density).
COVER_SIZES = {"grid": "(max-width: 480px) 45vw, 180px", "row": "48px", "big": "160px", "card": "56px"}


@register.simple_tag
def cover(artwork: Any, key: int | None, title: str, place: str = "grid") -> SafeString:
    """A cover image (lazy, srcset of the stored WebP sizes, JPEG as src) over a placeholder of its dominant
    colour, or the coloured initials tile when there is none. The placeholder is a data: SVG image rather than a
    style="" attribute, which the Content-Security-Policy forbids."""
    big = " big" if place == "big" else ""
    if artwork is None:
        return format_html('<span class="tile{} {}" aria-hidden="true">{}</span>', big, tile(key), initials(title))
    urls = ArtworkStorage.urls(artwork.hash)
    srcset = ", ".join(f"{urls['webp'][str(size)]} {size}w" for size in SIZES)
    placeholder = (
        "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'%3E%3Crect width='1' "
        f"height='1' fill='%23{artwork.color.lstrip('#') or '888888'}'/%3E%3C/svg%3E"
    )
    return format_html(
        '<span class="tile cover{}" aria-hidden="true" data-cover-color="{}">'
        '<img class="cover-placeholder" src="{}" alt="">'
        '<img class="cover-image" src="{}" srcset="{}" sizes="{}" loading="lazy" decoding="async" alt=""></span>',
        big,
        artwork.color,
        placeholder,
        urls["jpeg"]["300"],
        srcset,
        COVER_SIZES.get(place, COVER_SIZES["grid"]),
    )
