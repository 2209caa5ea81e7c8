"""Feed parsing: bytes of a feed → a ParsedFeed. Pure (no ORM, no network).

Two readers, one result. An RSS 2.0 feed that is well-formed XML (nearly every podcast feed) is read from
the C ElementTree it parses into: 300 items in ~6 ms, where feedparser takes ~80 ms and podcastparser
(a SAX reader in Python) ~28 ms (bench/podcasts.py --parsers prints the three on the running machine).
Everything else, Atom, RSS 1.0 and the malformed feeds some publishers serve, goes to feedparser, which
reads all of them and has a loose parser for the broken ones; both readers give the same ParsedFeed for
the same RSS (tests/podcasts/test_feeds.py compares them). podcastparser was not taken: it reads RSS 2.0
only, drops what it does not know, and was slower than the tree.

Entities: a document declares them only in a DOCTYPE, so one without a DOCTYPE (in an encoding where
"<!DOCTYPE" would be plain ASCII) is parsed by the C parser as it is; any other goes through defusedxml,
which refuses entity declarations and external references (an XXE, a billion laughs) before feedparser
sees the document (feedparser alone strips the DOCTYPE, then falls back to its loose parser).
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
from xml.etree import ElementTree
from xml.etree.ElementTree import Element, ParseError

import dateutil.parser
import defusedxml.ElementTree
import feedparser
from defusedxml import DefusedXmlException

# feedparser's reader of the many date spellings it knows (module-level in feedparser.datetimes, not re-exported).
from feedparser.datetimes import _parse_date as feedparser_date

MAX_KEY_LENGTH = 600
# The columns' ranges: a season or episode number past an integer column is no number, as is a length
# past a bigint.
MAX_INTEGER = 2**31 - 1
MAX_BIGINT = 2**63 - 1


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
    tree = _tree(data)
    if tree is not None and tree.tag == "rss":
        channel = tree.find("channel")
        if channel is not None:
            return _rss_read(channel)
    return _feedparser_read(data, tree)


def _feedparser_read(data: bytes, tree: Element | None) -> ParsedFeed:
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


# Encodings in which ASCII text is its own bytes, so a DOCTYPE would show as b"<!DOCTYPE" (and expat or
# Python's codecs read them); a document declaring any other goes through defusedxml.
_ASCII_SUPERSETS = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "iso-8859-15", "windows-1252",
     "cp1252", "windows-1250", "windows-1251", "iso-8859-2", "koi8-r"}
)  # fmt: skip
_DECLARATION = re.compile(rb"\s*<\?xml[^>]*?\bencoding\s*=\s*[\"']([A-Za-z0-9._-]{1,40})[\"']")


def _tree(data: bytes) -> Element | None:
    """The document's tree, or None when it is not well-formed XML (feedparser's loose parser reads the
    broken feeds some publishers serve, and finds nothing in HTML). FeedError for entities."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    declared = _DECLARATION.match(body)
    # A NUL byte is no character of an ASCII-superset document, and every UTF-16/32 one has them (one without
    # a byte-order mark can still start with the byte "<", and expat detects it): those go through defusedxml.
    plain = (
        body.lstrip()[:1] == b"<"
        and b"\x00" not in data
        and (declared is None or declared[1].decode().lower() in _ASCII_SUPERSETS)
    )
    try:
        # (Any other spelling of DOCTYPE is not XML: the C parser refuses it like any other syntax error.)
        if plain and b"<!DOCTYPE" not in data and b"<!doctype" not in data:
            # No DOCTYPE, so no entity can be declared: the C parser (~2.3 ms for 300 items, defusedxml's
            # Python-level one ~4.9 ms) meets only the five predefined ones and refuses any other.
            return ElementTree.fromstring(data)
        return defusedxml.ElementTree.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        reason = type(exc).__name__
        raise FeedError(f"refused: the document declares entities or external references ({reason})") from None
    except ParseError:
        # Not XML: feedparser's loose parser would read it, and it knows no better than to expand them.
        if re.search(rb"<!ENTITY", data[:65536], re.IGNORECASE):
            raise FeedError("refused: the document declares entities") from None
        return None


# Namespaces as feeds spell them (lower case, no trailing slash) → the prefix the readers below use.
_NAMESPACES = {
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes",
    "https://podcastindex.org/namespace/1.0": "podcast",
    "http://podcastindex.org/namespace/1.0": "podcast",
    "https://github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md": "podcast",
    "http://purl.org/rss/1.0/modules/content": "content",
    "http://purl.org/dc/elements/1.1": "dc",
    "http://www.w3.org/2005/atom": "atom",
}
_names: dict[str, str] = {}


def _name(tag: str) -> str:
    """ "{http://www.itunes.com/dtds/podcast-1.0.dtd}image" → "itunes:image" (memoised: a feed repeats a
    dozen tags thousands of times)."""
    name = _names.get(tag)
    if name is None:
        if tag[:1] == "{":
            namespace, _, local = tag[1:].partition("}")
            prefix = _NAMESPACES.get(namespace.lower().rstrip("/"), namespace)
            name = f"{prefix}:{local}"
        else:
            name = tag
        if len(_names) < 4096:
            _names[tag] = name
    return name


def _children(element: Element) -> dict[str, Element]:
    """Each child by name, the first of a name (a repeated <title> keeps its first, as feedparser does)."""
    found: dict[str, Element] = {}
    for child in element:
        name = _name(child.tag) if isinstance(child.tag, str) else ""
        if name not in found:
            found[name] = child
    return found


def _first(tags: dict[str, Element], *names: str) -> Element | None:
    """The first of these that the element has (not `or`: an Element without children is false)."""
    for name in names:
        if name in tags:
            return tags[name]
    return None


def _inner(element: Element | None) -> str:
    """An element's text; an element holding markup instead of text (XHTML in a description) as that
    markup, as feedparser gives it."""
    if element is None:
        return ""
    if len(element) == 0:
        return element.text or ""
    return (element.text or "") + "".join(ElementTree.tostring(child, encoding="unicode") for child in element)


def _attr(element: Element | None, name: str) -> str:
    return element.get(name, "") if element is not None else ""


def _rss_read(channel: Element) -> ParsedFeed:
    """RSS 2.0 + iTunes + Podcasting 2.0 from the tree (what feedparser reads from the same tags)."""
    tags = _children(channel)
    categories: list[str] = []
    for child in channel:
        name = _name(child.tag) if isinstance(child.tag, str) else ""
        terms = [child.text or ""] if name == "category" else []
        if name == "itunes:category":
            terms = [child.get("text", "")] + [sub.get("text", "") for sub in child if _name(sub.tag) == name]
        for term in terms:
            term = _text(term, 200)
            if term and term not in categories:
                categories.append(term)
    image = _attr(tags.get("itunes:image"), "href")
    if not image and (element := tags.get("image")) is not None:
        image = _inner(element.find("url"))
    author = _first(tags, "itunes:author", "author", "managingEditor", "dc:creator")
    description = _first(tags, "description", "itunes:summary", "itunes:subtitle")
    episodes: dict[str, ParsedEpisode] = {}
    for item in channel.iter("item"):
        episode = _rss_episode(item)
        # Duplicate GUIDs: the first (newest, in feed order) wins, as podcast apps do.
        if episode is not None and episode.key not in episodes:
            episodes[episode.key] = episode
    return ParsedFeed(
        title=_text(_inner(tags.get("title")), 500),
        author=_text(_inner(author), 500),
        description=_text(_inner(description), 100_000),
        image_url=_url(image),
        categories=categories,
        explicit=_yes(_inner(tags.get("itunes:explicit"))),
        language=_text(_inner(tags.get("language")), 35),
        link=_url(_inner(tags.get("link"))),
        podcast_guid=_text(_inner(tags.get("podcast:guid")), 200),
        new_feed_url=_url(_inner(tags.get("itunes:new-feed-url"))),
        blocked=_yes(_inner(tags.get("itunes:block"))),
        complete=_yes(_inner(tags.get("itunes:complete"))),
        episodes=list(episodes.values()),
    )


def _rss_episode(item: Element) -> ParsedEpisode | None:
    tags = _children(item)
    enclosure = tags.get("enclosure")
    enclosure_url = _url(_attr(enclosure, "url"))
    if not enclosure_url:
        return None  # nothing to listen to: a blog post in the feed
    guid = _text(_inner(tags.get("guid")), 500)
    link = _url(_inner(tags.get("link")))
    description = _first(tags, "content:encoded", "description", "itunes:summary")
    return ParsedEpisode(
        key=episode_key(guid, enclosure_url),
        guid=guid,
        title=_text(_inner(tags.get("title")), 500),
        description=_inner(description).strip()[:100_000],
        link=link if link != enclosure_url else "",
        published_at=_date(None, _inner(_first(tags, "pubDate", "dc:date"))),
        enclosure_url=enclosure_url,
        enclosure_type=_text(_attr(enclosure, "type"), 100),
        enclosure_bytes=_positive(_attr(enclosure, "length"), limit=MAX_BIGINT),
        duration_ms=_duration_ms(_inner(tags.get("itunes:duration"))),
        season=_positive(_inner(_first(tags, "podcast:season", "itunes:season"))),
        episode_number=_positive(_inner(_first(tags, "podcast:episode", "itunes:episode"))),
        episode_type=_text(_inner(tags.get("itunes:episodeType")), 20),
        image_url=_url(_attr(tags.get("itunes:image"), "href")),
        chapters_url=_url(_attr(tags.get("podcast:chapters"), "url")),
    )


_ITUNES_EXPLICIT = "{http://www.itunes.com/dtds/podcast-1.0.dtd}explicit"


def _explicit(value: Any, tree: Element | None) -> bool:
    """feedparser knows "yes"/"clean" only; Apple's current spelling is "true"/"false", read from the tree."""
    if value is not None:
        return bool(value)
    channel = tree.find("channel") if tree is not None else None
    found = channel.find(_ITUNES_EXPLICIT) if channel is not None else None
    return found is not None and _yes(found.text)


# Part of every digest: a change to how items are read (a new field, a fixed rule) rewrites each episode once.
DIGEST_VERSION = "1"


def episode_digest(episode: ParsedEpisode) -> str:
    """A hash of everything a refresh writes of an episode (~3 µs: 300 of them cost less than one query)."""
    e = episode
    text = (
        f"{DIGEST_VERSION}\x1f{e.guid}\x1f{e.title}\x1f{e.description}\x1f{e.link}\x1f{e.published_at}\x1f"
        f"{e.enclosure_url}\x1f{e.enclosure_type}\x1f{e.enclosure_bytes}\x1f{e.duration_ms}\x1f{e.season}\x1f"
        f"{e.episode_number}\x1f{e.episode_type}\x1f{e.image_url}\x1f{e.chapters_url}"
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


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
        enclosure_bytes=_positive(enclosure.get("length"), limit=MAX_BIGINT),
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
    return text if len(text) <= 2048 and text[:8].lower().startswith(("http://", "https://")) else ""


def _yes(value: Any) -> bool:
    if isinstance(value, bool | int):
        return bool(value)
    return str(value or "").strip().lower() in ("yes", "true", "explicit", "1")


def _positive(value: Any, *, limit: int = MAX_INTEGER) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= limit else None


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
            # The other spellings feedparser knows (the tree reader meets them; for feedparser's own
            # reading this was tried already and `parsed` was empty).
            if parsed is None and (struct := feedparser_date(text)):
                return _date(struct, "")
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
