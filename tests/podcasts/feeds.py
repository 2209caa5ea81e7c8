"""Feeds for the podcast tests, made with feedgen (RSS 2.0 + iTunes) or written by hand for edge cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from feedgen.feed import FeedGenerator


@dataclass
class Item:
    guid: str | None
    title: str
    url: str
    published: datetime
    length: int = 1000
    mime: str = "audio/mpeg"
    description: str = ""


def items(base_url: str, count: int, *, start: datetime | None = None, prefix: str = "ep") -> list[Item]:
    """`count` episodes, one a day, the newest first (as feeds list them)."""
    start = start or datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
    return [
        Item(guid=f"{prefix}-{n}", title=f"Episode {n}", url=f"{base_url}/audio/{prefix}-{n}.mp3",
             published=start + timedelta(days=n), description=f"<p>About <b>episode {n}</b></p>")
        for n in range(count, 0, -1)
    ]  # fmt: skip


def rss(title: str, episodes: list[Item], *, image: str = "", new_feed_url: str = "") -> bytes:
    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.title(title)
    fg.link(href="https://example.org/show", rel="alternate")
    fg.description(f"All about {title}")
    fg.language("en")
    fg.podcast.itunes_author("Jane Host")
    fg.podcast.itunes_category("Technology", "Tech News")
    fg.podcast.itunes_explicit("no")
    if image:
        fg.podcast.itunes_image(image)
    if new_feed_url:
        fg.podcast.itunes_new_feed_url(new_feed_url)
    for item in reversed(episodes):  # feedgen writes the last added first
        entry = fg.add_entry()
        if item.guid is not None:
            entry.guid(item.guid, permalink=False)
        entry.title(item.title)
        entry.description(item.description or item.title)
        entry.published(item.published)
        entry.enclosure(item.url, str(item.length), item.mime)
    return fg.rss_str(pretty=False)
