"""Feed parsing: bytes of a feed → a ParsedFeed. Pure (no ORM, no network).

feedparser rather than podcastparser: it reads RSS 0.9x-2.0, RSS 1.0 and Atom alike, copes with the
malformed feeds real publishers serve (a loose parser after the strict one), knows the iTunes tags and
keeps unknown namespaces' elements (`podcast:*`) as `podcast_<name>`; podcastparser reads RSS 2.0 only
and drops what it does not know. Neither refuses entity declarations, so every feed first goes through
defusedxml: an XXE, a billion-laughs or any other document that declares entities is refused before
feedparser sees it (feedparser alone strips the DOCTYPE but then falls back to its loose parser).
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import dateutil.parser
import defusedxml.ElementTree
import feedparser
from defusedxml import DefusedXmlException

MAX_KEY_LENGTH = 600


class FeedError(Exception):
    """The document is not a feed we accept; the message says why, for the admin and the API."""


@dataclass
class ParsedEpisode:
    key: str
    guid: str
    title: str
    description: str
    link: str
    published_at: datetime | None
    enclosure_url: str
    enclosure_type: str
    enclosure_bytes: int | None
    duration_ms: int | None
    season: int | None
    episode_number: int | None
    episode_type: str
    image_url: str
    chapters_url: str


@dataclass
class ParsedFeed:
    title: str
    author: str
    description: str
    image_url: str
    categories: list[str]
    explicit: bool
    language: str
    link: str
    podcast_guid: str
    new_feed_url: str
    blocked: bool
    complete: bool
    episodes: list[ParsedEpisode] = field(default_factory=list)


def feed_parse(data: bytes) -> ParsedFeed:
    """Raise FeedError for a refused document (entities, not XML, not a feed)."""
    tree = _refuse_entities(data)
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False)
    if not parsed.version and not parsed.entries and not parsed.feed.get("title"):
        raise FeedError("not a feed (no RSS or Atom document found)")
    channel = parsed.feed
    episodes: dict[str, ParsedEpisode] = {}
    for entry in parsed.entries:
        episode = _episode(entry)
        # Duplicate GUIDs: the first (newest, in feed order) wins, as podcast apps do.
        if episode is not None and episode.key not in episodes:
            episodes[episode.key] = episode
    return ParsedFeed(
        title=_text(channel.get("title"), 500),
        author=_text(channel.get("author") or channel.get("itunes_author"), 500),
        description=_text(channel.get("summary") or channel.get("subtitle"), 100_000),
        image_url=_url((channel.get("image") or {}).get("href")),
        categories=_categories(channel),
        explicit=_explicit(channel.get("itunes_explicit"), tree),
        language=_text(channel.get("language"), 35),
        link=_url(channel.get("link")),
        podcast_guid=_text(channel.get("podcast_guid"), 200),
        new_feed_url=_url(channel.get("itunes_new-feed-url")),
        blocked=_yes(channel.get("itunes_block")),
        complete=_yes(channel.get("itunes_complete")),
        episodes=list(episodes.values()),
    )


def _refuse_entities(data: bytes) -> Element | None:
    """defusedxml's ElementTree parse (the C parser; a 300-item feed costs ~2 ms): entity declarations and
    external references are refused. A document that is not well-formed XML passes on to feedparser's
    loose parser, which reads the broken feeds some publishers serve (and finds nothing in HTML)."""
    try:
        return defusedxml.ElementTree.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        reason = type(exc).__name__
        raise FeedError(f"refused: the document declares entities or external references ({reason})") from None
    except ParseError:
        if re.search(rb"<!ENTITY", data[:65536], re.IGNORECASE):
            raise FeedError("refused: the document declares entities") from None
        return None


_ITUNES_EXPLICIT = "{http://www.itunes.com/dtds/podcast-1.0.dtd}explicit"


def _explicit(value: Any, tree: Element | None) -> bool:
    """feedparser knows "yes"/"clean" only; Apple's current spelling is "true"/"false", read from the tree."""
    if value is not None:
        return bool(value)
    channel = tree.find("channel") if tree is not None else None
    found = channel.find(_ITUNES_EXPLICIT) if channel is not None else None
    return found is not None and _yes(found.text)


def episode_key(guid: str, enclosure_url: str) -> str:
    if guid:
        return guid[:MAX_KEY_LENGTH]
    return "url:" + hashlib.sha256(enclosure_url.encode()).hexdigest()


def _episode(entry: Any) -> ParsedEpisode | None:
    enclosure = next((link for link in entry.get("links", []) if link.get("rel") == "enclosure"), None)
    if enclosure is None or not _url(enclosure.get("href")):
        return None  # nothing to listen to: a blog post in the feed
    enclosure_url = _url(enclosure.get("href"))
    guid = _text(entry.get("id"), 500)
    chapters = entry.get("podcast_chapters") or {}
    return ParsedEpisode(
        key=episode_key(guid, enclosure_url),
        guid=guid,
        title=_text(entry.get("title"), 500),
        description=_description(entry),
        link=_url(entry.get("link")) if entry.get("link") != enclosure_url else "",
        # dict.get: FeedParserDict maps a missing key to the other one, with a DeprecationWarning.
        published_at=_date(
            dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed"),
            dict.get(entry, "published") or dict.get(entry, "updated"),
        ),
        enclosure_url=enclosure_url,
        enclosure_type=_text(enclosure.get("type"), 100),
        enclosure_bytes=_positive(enclosure.get("length")),
        duration_ms=_duration_ms(entry.get("itunes_duration")),
        season=_positive(entry.get("podcast_season") or entry.get("itunes_season")),
        episode_number=_positive(entry.get("podcast_episode") or entry.get("itunes_episode")),
        episode_type=_text(entry.get("itunes_episodetype"), 20),
        image_url=_url((entry.get("image") or {}).get("href")),
        chapters_url=_url(chapters.get("url") if isinstance(chapters, dict) else ""),
    )


def _description(entry: Any) -> str:
    for content in entry.get("content") or []:
        if content.get("value"):
            return str(content["value"])[:100_000]
    return _text(entry.get("summary"), 100_000)


def _text(value: Any, limit: int) -> str:
    return str(value or "").strip()[:limit]


def _url(value: Any) -> str:
    text = str(value or "").strip()
    return text if len(text) <= 2048 and re.match(r"https?://", text, re.IGNORECASE) else ""


def _yes(value: Any) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    return str(value or "").strip().lower() in ("yes", "true", "explicit", "1")


def _positive(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**62 else None


def _date(parsed: Any, raw: Any) -> datetime | None:
    """feedparser's UTC struct_time; else the raw text read as RFC 2822 or ISO 8601, a date without a zone
    taken as UTC (feedparser gives up on "Mon, 30 Nov 2026 08:00:00"); nonsense gives None."""
    try:
        if parsed:
            return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, TypeError, OSError):
        pass
    text = str(raw or "").strip()[:100]
    if not text:
        return None
    try:
        value = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            value = dateutil.parser.isoparse(text)
        except (ValueError, OverflowError):
            return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _duration_ms(value: Any) -> int | None:
    """itunes:duration: seconds ("3723", "3723.5") or [[h:]m:]s."""
    text = str(value or "").strip()
    if not text:
        return None
    try:
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
    except ValueError:
        return None
    return int(seconds * 1000) if 0 < seconds < 10**7 else None


def _categories(channel: Any) -> list[str]:
    seen: list[str] = []
    for tag in channel.get("tags") or []:
        term = _text(tag.get("term"), 200)
        if term and term not in seen:
            seen.append(term)
    return seen


def chapters_parse(data: bytes, *, duration_ms: int) -> list[dict[str, Any]]:
    """Podcasting 2.0 JSON chapters → [{"title", "start_ms", "end_ms"}], each ending where the next starts
    (the last at the episode's end). Chapters marked `toc: false` are not listed; bad input gives []."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return []
    raw = document.get("chapters") if isinstance(document, dict) else None
    if not isinstance(raw, list):
        return []
    starts: list[tuple[int, str]] = []
    for chapter in raw:
        if not isinstance(chapter, dict) or chapter.get("toc") is False:
            continue
        try:
            start_ms = int(float(chapter.get("startTime", 0)) * 1000)
        except (TypeError, ValueError):
            continue
        if 0 <= start_ms < duration_ms:
            starts.append((start_ms, _text(chapter.get("title"), 500) or f"Chapter {len(starts) + 1}"))
    starts.sort()
    chapters = []
    for index, (start_ms, title) in enumerate(starts):
        end_ms = starts[index + 1][0] if index + 1 < len(starts) else duration_ms
        if end_ms > start_ms:
            chapters.append({"title": title, "start_ms": start_ms, "end_ms": end_ms})
    return chapters


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_name(text: str, *, limit: int = 120) -> str:
    """A file or folder name from a feed's text: no separators, no control or reserved characters, no
    leading dot (the scanner skips hidden entries), at most `limit` UTF-8 bytes."""
    name = unicodedata.normalize("NFC", text)
    name = _UNSAFE.sub(" ", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    encoded = name.encode()[:limit]
    name = encoded.decode(errors="ignore").strip(" .")
    return name or "untitled"
