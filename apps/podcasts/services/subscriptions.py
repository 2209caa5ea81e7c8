"""Subscriptions: subscribe, refresh a feed (conditional GET, parse, episodes upsert, backoff), the beat
pass over due feeds, and the auto-download decision."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework import status

from apps.accounts.types import User
from apps.library.models import Library, LibraryKind
from apps.ops.errors import DomainError
from apps.podcasts.access import may_manage
from apps.podcasts.feeds import FeedError, ParsedEpisode, ParsedFeed, episode_digest, feed_parse, safe_name
from apps.podcasts.fetch import FetchError, client, url_check
from apps.podcasts.models import AutoDownload, EpisodeState, FeedEpisode, Subscription
from apps.podcasts.services.artwork import show_image_update
from apps.podcasts.services.dispatch import REFRESH_BATCH_TASK, REFRESH_TASK, task_send
from apps.podcasts.services.downloads import episodes_download_request

logger = logging.getLogger(__name__)

# How long a refresh claimed by beat may take before beat may claim it again (its next_poll_at).
REFRESH_LEASE = timedelta(minutes=10)
MAX_BACKOFF = timedelta(hours=24)
# Due feeds go to the workers in tasks of this many: the unchanged ones are then written in one statement
# (bench/podcasts.py: one UPDATE per feed cost ten times the 304 itself).
REFRESH_BATCH = 50
# A whole feed must arrive within this (a server trickling a byte every few seconds never stalls).
FEED_DEADLINE_S = 120.0
# Fields of an episode that a refresh keeps up to date from the feed.
EPISODE_FIELDS = (
    "guid", "title", "description", "link", "published_at", "enclosure_url", "enclosure_type", "enclosure_bytes",
    "duration_ms", "season", "episode_number", "episode_type", "image_url", "chapters_url",
)  # fmt: skip


POLICY_FIELDS = frozenset(
    {"auto_download", "auto_download_newest", "keep_newest", "delete_played_after_days", "poll_interval_minutes"}
)


class NotAllowed(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class AlreadySubscribed(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "already_subscribed"


@dataclass
class RefreshResult:
    status: str  # "unchanged", "updated", "failed"
    new_episodes: int = 0
    error: str = ""
    queued_downloads: list[int] = field(default_factory=list)


def subscription_create(
    *,
    user: User | None,
    library: Library,
    feed_url: str,
    auto_download: str = AutoDownload.NEWEST,
    auto_download_newest: int = 3,
    keep_newest: int | None = None,
    delete_played_after_days: int | None = None,
    poll_interval_minutes: int = 60,
    refresh: bool = True,
) -> Subscription:
    """Subscribe `library` to a feed; its first refresh is queued. `user` None: the system (OPML import
    by a command, tests)."""
    if library.kind != LibraryKind.PODCAST:
        raise DomainError(
            "Only a podcast library can subscribe to feeds.", fields={"library": ["not a podcast library"]}
        )
    if user is not None and not may_manage(user, library):
        raise NotAllowed("Not found.")
    feed_url = feed_url.strip()
    try:
        url_check(feed_url)
    except FetchError as exc:
        raise DomainError(str(exc), fields={"feed_url": [str(exc)]}) from None
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                library=library,
                feed_url=feed_url,
                created_by=user,
                auto_download=auto_download,
                auto_download_newest=auto_download_newest,
                keep_newest=keep_newest,
                delete_played_after_days=delete_played_after_days,
                poll_interval_minutes=poll_interval_minutes,
                next_poll_at=timezone.now(),
            )
    except IntegrityError:
        raise AlreadySubscribed(
            "This library is already subscribed to that feed.", fields={"feed_url": ["already subscribed"]}
        ) from None
    if refresh:
        subscription_refresh_request(subscription=subscription)
    return subscription


def subscription_refresh_request(*, subscription: Subscription, manual: bool = False) -> None:
    """Queue a refresh now ("Refresh now" in the API, admin and web player)."""
    task_send(REFRESH_TASK, subscription.pk, manual)


def subscriptions_refresh_due(*, limit: int = 1000) -> list[int]:
    """Beat: claim the subscriptions whose next poll is due (their next_poll_at moves on by a lease, so a
    second beat or a slow run does not take them twice) and queue one refresh each."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Subscription.objects.select_for_update(skip_locked=True)
            .filter(Q(next_poll_at__lte=now) | Q(next_poll_at__isnull=True))
            .order_by("next_poll_at")
            .values_list("pk", flat=True)[:limit]
        )
        Subscription.objects.filter(pk__in=due).update(next_poll_at=now + REFRESH_LEASE)
    for start in range(0, len(due), REFRESH_BATCH):
        task_send(REFRESH_BATCH_TASK, due[start : start + REFRESH_BATCH])
    return due


def _next_poll(subscription: Subscription, *, failures: int) -> timedelta:
    """The interval, ±10 % (feeds subscribed together do not all poll in the same second); after failures,
    doubled per failure up to a day."""
    interval = timedelta(minutes=subscription.poll_interval_minutes)
    if failures:
        interval = min(interval * (2 ** min(failures, 16)), MAX_BACKOFF)
    return interval * random.uniform(0.9, 1.1)


def subscription_refresh(*, subscription_id: int, manual: bool = False) -> RefreshResult:
    """Refresh one feed (see subscriptions_refresh). `manual`: asked by a person, so a success lifts an
    auto-download pause."""
    results = subscriptions_refresh(subscription_ids=[subscription_id], manual=manual)
    return results.get(subscription_id, RefreshResult(status="gone"))


# What a refresh reads before it knows whether the feed changed. An unchanged feed (the usual case) needs no
# more, a changed one is then loaded whole: 50 model instances of every column (the description up to 100 kB
# each) cost more CPU than their 50 304s (a CPU-clock cProfile: in_bulk was ~60 % of what a refresh added to
# the bare GETs).
_POLL_FIELDS = (
    "id", "feed_url", "etag", "last_modified", "content_sha256", "poll_interval_minutes", "failures",
    "auto_download_paused",
)  # fmt: skip
# What a successful fetch sets (carried over to the whole row of a changed feed).
_POLLED_FIELDS = (
    "etag", "last_modified", "content_sha256", "failures", "last_error", "last_polled_at", "last_success_at",
    "next_poll_at", "updated_at", "auto_download_paused",
)  # fmt: skip


def subscriptions_refresh(*, subscription_ids: Sequence[int], manual: bool = False) -> dict[int, RefreshResult]:
    """Fetch each feed (conditional GET), and where it changed, parse it and bring the subscription and its
    episodes up to date, then queue the auto-downloads. A failure is recorded on the row with the next
    attempt (backoff); nothing raises for a bad feed. The unchanged ones, the usual case, are written
    together in one UPDATE: their refresh costs the 304 and a share of that statement."""
    subscriptions = Subscription.objects.only(*_POLL_FIELDS).in_bulk(list(subscription_ids))
    results: dict[int, RefreshResult] = {}
    unchanged: list[Subscription] = []
    for subscription_id in subscription_ids:
        subscription = subscriptions.get(subscription_id)
        if subscription is None:
            continue  # unsubscribed meanwhile
        now = timezone.now()
        try:
            fetched = _feed_fetch(subscription)
        except (FetchError, FeedError) as exc:
            results[subscription_id] = _refresh_failed(subscription, str(exc), now)
            continue
        subscription.etag, subscription.last_modified = fetched.etag[:500], fetched.last_modified[:100]
        subscription.content_sha256 = fetched.digest
        subscription.failures, subscription.last_error = 0, ""
        subscription.last_polled_at = subscription.last_success_at = now
        subscription.next_poll_at = now + _next_poll(subscription, failures=0)
        subscription.updated_at = now
        if manual:
            subscription.auto_download_paused = False
        if fetched.parsed is None:
            unchanged.append(subscription)
            results[subscription_id] = RefreshResult(status="unchanged")
            continue
        full = Subscription.objects.select_related("library").filter(pk=subscription_id).first()
        if full is None:
            continue  # unsubscribed meanwhile
        for name in _POLLED_FIELDS:
            setattr(full, name, getattr(subscription, name))
        subscription = full
        result = results[subscription_id] = RefreshResult(status="updated")
        with transaction.atomic():
            _commit_without_flush()
            result.new_episodes = _apply(subscription, fetched.parsed, now, moved_to=fetched.moved_to)
            result.queued_downloads = auto_downloads_queue(subscription=subscription)
        show_image_update(subscription=subscription)  # (a fetch, when the image URL is new: outside the transaction)
    if unchanged:
        _polled_write(unchanged)
    return results


# One statement for a batch of unchanged feeds: Django's bulk_update builds a CASE per column and row,
# whose compilation cost more than the 304s themselves (bench/podcasts.py).
_POLLED_SQL = """
UPDATE podcasts_subscription AS s
SET etag = r.etag, last_modified = r.last_modified, content_sha256 = r.sha, failures = 0, last_error = '',
    last_polled_at = r.polled_at, last_success_at = r.polled_at, next_poll_at = r.next_poll_at,
    auto_download_paused = r.paused, updated_at = r.polled_at
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::boolean[])
    AS r(id, etag, last_modified, sha, polled_at, next_poll_at, paused)
WHERE s.id = r.id
"""


def _polled_write(subscriptions: list[Subscription]) -> None:
    columns: list[Any] = [
        [s.pk for s in subscriptions],
        [s.etag for s in subscriptions],
        [s.last_modified for s in subscriptions],
        [s.content_sha256 for s in subscriptions],
        [s.last_polled_at for s in subscriptions],
        [s.next_poll_at for s in subscriptions],
        [s.auto_download_paused for s in subscriptions],
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        _commit_without_flush()
        cursor.execute(_POLLED_SQL, columns)


def _commit_without_flush() -> None:
    """The transaction commits without waiting for its WAL to reach the disk (PostgreSQL's asynchronous
    commit: a crash in the next ~0.6 s loses it whole, never half). What a refresh writes is the feed's
    state as it was just read, which the next poll reads again; the flush was most of the 304 path's
    time on a busy disk (one UPDATE for 50 unchanged feeds: 30 ms of 38, bench/podcasts.py)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO OFF")


@dataclass
class _Fetched:
    etag: str
    last_modified: str
    digest: str
    moved_to: str
    parsed: ParsedFeed | None  # None: unchanged (a 304, or the same bytes as last time)


def _feed_fetch(subscription: Subscription) -> _Fetched:
    headers = {}
    if subscription.etag:
        headers["If-None-Match"] = subscription.etag
    if subscription.last_modified:
        headers["If-Modified-Since"] = subscription.last_modified
    with client().open(subscription.feed_url, headers=headers) as response:
        if response.status == 304:
            # Read to its (empty) end, so the connection goes back to the pool: closing it cost the next
            # feed of the same host a new TCP connection and DNS lookup (0.4 ms of a 0.6 ms refresh).
            response.read(max_bytes=settings.PODCAST_FEED_MAX_BYTES, deadline_s=FEED_DEADLINE_S)
            body = None
        elif response.status != 200:
            raise FetchError(f"HTTP {response.status}")
        else:
            body = response.read(max_bytes=settings.PODCAST_FEED_MAX_BYTES, deadline_s=FEED_DEADLINE_S)
        etag, last_modified, moved_to = (
            response.header("ETag"),
            response.header("Last-Modified"),
            response.permanent_url,
        )
    digest = hashlib.sha256(body).hexdigest() if body is not None else subscription.content_sha256
    parsed = feed_parse(body) if body is not None and digest != subscription.content_sha256 else None
    return _Fetched(etag=etag, last_modified=last_modified, digest=digest, moved_to=moved_to, parsed=parsed)


def _refresh_failed(subscription: Subscription, error: str, now: datetime) -> RefreshResult:
    failures = subscription.failures + 1
    paused = subscription.auto_download_paused or failures >= settings.PODCAST_PAUSE_AFTER_FAILURES
    Subscription.objects.filter(pk=subscription.pk).update(
        failures=failures,
        last_error=error[:2000],
        last_polled_at=now,
        next_poll_at=now + _next_poll(subscription, failures=failures),
        auto_download_paused=paused,
        updated_at=now,
    )
    logger.info("podcast feed %s failed (%d in a row): %s", subscription.feed_url, failures, error)
    return RefreshResult(status="failed", error=error)


def _apply(subscription: Subscription, parsed: ParsedFeed, now: datetime, *, moved_to: str) -> int:
    """Metadata, a moved feed, and the episodes (new ones created, known ones updated where the feed
    changed them, those gone from the feed kept with in_feed=False). Returns how many are new."""
    for name in ("title", "author", "description", "image_url", "categories", "explicit", "language", "link"):
        setattr(subscription, name, getattr(parsed, name))
    subscription.podcast_guid, subscription.blocked, subscription.complete = (
        parsed.podcast_guid, parsed.blocked, parsed.complete
    )  # fmt: skip
    if not subscription.folder_name:
        subscription.folder_name = _free_folder_name(subscription, parsed.title or subscription.feed_url)
    new_url = parsed.new_feed_url or moved_to
    if new_url and new_url != subscription.feed_url and not _subscribed_elsewhere(subscription, new_url):
        logger.info("podcast feed moved: %s → %s", subscription.feed_url, new_url)
        subscription.feed_url = new_url
        subscription.etag = subscription.last_modified = ""  # validators of the old URL
    subscription.save()

    # Only the key, id and digest of the known episodes (300 short rows), not the episodes: an unchanged one
    # costs a dict lookup and a hash, and is not written.
    known = {
        key: (pk, digest, in_feed)
        for key, pk, digest, in_feed in FeedEpisode.objects.filter(subscription=subscription).values_list(
            "key", "pk", "content_hash", "in_feed"
        )
    }
    created: list[tuple[int, ParsedEpisode, str]] = []
    changed: list[tuple[int, ParsedEpisode, str]] = []
    for item in parsed.episodes:
        digest = episode_digest(item)
        row = known.pop(item.key, None)
        if row is None:
            created.append((0, item, digest))
        elif row[1] != digest or not row[2]:
            changed.append((row[0], item, digest))
    gone = [pk for pk, _, in_feed in known.values() if in_feed]
    if created:
        _episodes_write(_EPISODES_INSERT_SQL, subscription.pk, created, now)
    if changed:
        _episodes_write(_EPISODES_UPDATE_SQL, subscription.pk, changed, now)
    if gone:
        FeedEpisode.objects.filter(pk__in=gone).update(in_feed=False, updated_at=now)
    return len(created)


# New and changed episodes in one statement each, from arrays: bulk_create built a model instance per
# episode (a feed's first refresh, 300 of them: ~40 ms of CPU), bulk_update a CASE per column and row.
_EPISODES_ROWS = """
unnest(%(id)s::bigint[], %(guid)s::text[], %(title)s::text[], %(description)s::text[], %(link)s::text[],
       %(published_at)s::timestamptz[], %(enclosure_url)s::text[], %(enclosure_type)s::text[],
       %(enclosure_bytes)s::bigint[], %(duration_ms)s::bigint[], %(season)s::integer[], %(episode_number)s::integer[],
       %(episode_type)s::text[], %(image_url)s::text[], %(chapters_url)s::text[], %(key)s::text[],
       %(content_hash)s::text[])
AS r(id, guid, title, description, link, published_at, enclosure_url, enclosure_type, enclosure_bytes, duration_ms,
     season, episode_number, episode_type, image_url, chapters_url, key, content_hash)
"""
_EPISODES_INSERT_SQL = f"""
INSERT INTO podcasts_feedepisode (
    subscription_id, key, guid, title, description, link, published_at, enclosure_url, enclosure_type,
    enclosure_bytes, duration_ms, season, episode_number, episode_type, image_url, chapters_url, content_hash,
    in_feed, state, download_error, download_attempts, file_path, first_seen_at, created_at, updated_at)
SELECT %(subscription)s, r.key, r.guid, r.title, r.description, r.link, r.published_at, r.enclosure_url,
    r.enclosure_type, r.enclosure_bytes, r.duration_ms, r.season, r.episode_number, r.episode_type, r.image_url,
    r.chapters_url, r.content_hash, true, '{EpisodeState.AVAILABLE.value}', '', 0, '', %(now)s, %(now)s, %(now)s
FROM {_EPISODES_ROWS}
ON CONFLICT (subscription_id, key) DO NOTHING
"""
_EPISODES_UPDATE_SQL = f"""
UPDATE podcasts_feedepisode AS e
SET guid = r.guid, title = r.title, description = r.description, link = r.link, published_at = r.published_at,
    enclosure_url = r.enclosure_url, enclosure_type = r.enclosure_type, enclosure_bytes = r.enclosure_bytes,
    duration_ms = r.duration_ms, season = r.season, episode_number = r.episode_number,
    episode_type = r.episode_type, image_url = r.image_url, chapters_url = r.chapters_url,
    content_hash = r.content_hash, in_feed = true, updated_at = %(now)s
FROM {_EPISODES_ROWS}
WHERE e.id = r.id AND e.subscription_id = %(subscription)s
"""


def _episodes_write(sql: str, subscription_id: int, rows: list[tuple[int, ParsedEpisode, str]], now: datetime) -> None:
    params: dict[str, Any] = {name: [getattr(item, name) for _, item, _ in rows] for name in (*EPISODE_FIELDS, "key")}
    params.update(
        id=[pk for pk, _, _ in rows], content_hash=[digest for _, _, digest in rows], subscription=subscription_id,
        now=now,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _free_folder_name(subscription: Subscription, title: str) -> str:
    base = safe_name(title, limit=100)
    taken = set(
        Subscription.objects.filter(library=subscription.library_id, folder_name__startswith=base).values_list(
            "folder_name", flat=True
        )
    )
    name, number = base, 2
    while name in taken:
        name, number = f"{base} ({number})", number + 1
    return name


def _subscribed_elsewhere(subscription: Subscription, url: str) -> bool:
    return (
        Subscription.objects.filter(library=subscription.library_id, feed_url=url).exclude(pk=subscription.pk).exists()
    )


def auto_downloads_queue(*, subscription: Subscription) -> list[int]:
    """The episodes the policy wants that were never downloaded: queued (one download task each, after
    commit). Nothing while auto-download is paused. Episodes removed by retention or failed stay so."""
    if subscription.auto_download == AutoDownload.NONE or subscription.auto_download_paused:
        return []
    in_feed = FeedEpisode.objects.filter(subscription=subscription, in_feed=True)
    if subscription.auto_download == AutoDownload.NEWEST:
        wanted = list(
            in_feed.order_by(F("published_at").desc(nulls_last=True), "-first_seen_at", "-id").values_list(
                "pk", flat=True
            )[: subscription.auto_download_newest]
        )
    else:
        wanted = list(in_feed.filter(published_at__gte=subscription.created_at).values_list("pk", flat=True))
    return episodes_download_request(episode_ids=wanted, states=(EpisodeState.AVAILABLE,))


def subscription_update(*, user: User, subscription: Subscription, **policy: object) -> Subscription:
    """Change the policies (auto-download, retention, interval). Changing the auto-download policy lifts a
    pause: a person looked at it."""
    if not may_manage(user, subscription.library):
        raise NotAllowed("Not found.")
    allowed = {
        "auto_download",
        "auto_download_newest",
        "keep_newest",
        "delete_played_after_days",
        "poll_interval_minutes",
    }
    for name, value in policy.items():
        if name not in allowed:
            raise DomainError(f"{name} cannot be changed.", fields={name: ["cannot be changed"]})
        setattr(subscription, name, value)
    if "auto_download" in policy or "auto_download_newest" in policy:
        subscription.auto_download_paused = False
    subscription.save()
    if "auto_download" in policy or "auto_download_newest" in policy:
        with transaction.atomic():
            auto_downloads_queue(subscription=subscription)
    return subscription


def subscription_delete(*, user: User, subscription: Subscription) -> None:
    """Unsubscribe: the subscription and its episode list go; downloaded files stay tracks of the library."""
    if not may_manage(user, subscription.library):
        raise NotAllowed("Not found.")
    subscription.delete()


def subscription_refresh_now(*, user: User, subscription: Subscription) -> None:
    if not may_manage(user, subscription.library):
        raise NotAllowed("Not found.")
    subscription_refresh_request(subscription=subscription, manual=True)


@dataclass
class OpmlImport:
    created: list[Subscription] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def subscriptions_import(*, user: User | None, library: Library, feed_urls: list[str], **policy: object) -> OpmlImport:
    """Subscribe to each feed (an OPML import): the ones already subscribed and the refused ones are
    reported, not fatal."""
    result = OpmlImport()
    for url in feed_urls:
        try:
            result.created.append(
                subscription_create(user=user, library=library, feed_url=url, **policy)  # type: ignore[arg-type]
            )
        except AlreadySubscribed:
            result.already.append(url)
        except NotAllowed:
            raise
        except DomainError as exc:
            result.refused[url] = exc.message
    return result
