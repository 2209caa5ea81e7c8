"""Podcasts: getPodcasts, getNewestPodcasts, getPodcastEpisode (OpenSubsonic), refreshPodcasts,
createPodcastChannel, deletePodcastChannel, downloadPodcastEpisode, deletePodcastEpisode, over apps.podcasts'
selectors and services (the REST API's rules: a user sees the shows of the podcast libraries granted to
them; staff, or a user with the podcasts permission on a granted library, manage them).

A channel is a Subscription (`pc-<id>`), an episode a FeedEpisode (`pe-<id>`): every item its feed listed,
downloaded or not. A downloaded episode is a track of the podcast library: its entry is that track's Child
(size, format, cover, play count, resume point) with `streamId` = the track's `tr-` id, which `stream`,
`download`, `scrobble` and bookmarks take like any song's.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import nh3
from django.db.models import QuerySet

from apps.library.models import Library
from apps.podcasts.access import manageable_libraries, may_manage
from apps.podcasts.models import EpisodeState, FeedEpisode, Subscription
from apps.podcasts.selectors import NEWEST_FIRST, episode_get, subscription_get, subscription_list
from apps.podcasts.services.downloads import episodes_download_request
from apps.podcasts.services.retention import episode_delete
from apps.podcasts.services.subscriptions import subscription_create, subscription_delete, subscription_refresh_now
from apps.subsonic import mapping
from apps.subsonic.endpoints.common import songs_by_id
from apps.subsonic.registry import Call, endpoint
from apps.subsonic.response import ErrorCode, SubsonicError, not_found

# PodcastStatus (new, downloading, completed, error, deleted, skipped) of an episode's state. Subsonic's own
# server marks an episode it will not fetch by itself "skipped", and apps (DSub, Ultrasonic) offer to
# download exactly those: an episode nobody downloaded is "skipped", one queued or being fetched
# "downloading".
EPISODE_STATUS: dict[str, str] = {
    EpisodeState.AVAILABLE: "skipped",
    EpisodeState.QUEUED: "downloading",
    EpisodeState.DOWNLOADING: "downloading",
    EpisodeState.DOWNLOADED: "completed",
    EpisodeState.FAILED: "error",
    EpisodeState.REMOVED: "deleted",
}
NOT_ALLOWED = "You may not manage this library's podcasts."


def plain_text(markup: str) -> str | None:
    """Show notes as text (apps show `description` as it is, and most feeds write HTML): tags dropped,
    script and style contents with them, entities decoded."""
    if "<" not in markup and "&" not in markup:
        return markup.strip() or None
    return html.unescape(nh3.clean(markup, tags=set())).strip() or None


def _channel_status(subscription: Subscription) -> str:
    if subscription.failures:
        return "error"
    return "completed" if subscription.last_success_at is not None else "new"


def _episode(episode: FeedEpisode, show: Subscription, songs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    song = songs.get(mapping.track_id(episode.track_id)) if episode.track_id is not None else None
    if song is not None and episode.state == EpisodeState.DOWNLOADED:
        entry: dict[str, Any] = dict(song)
        entry["streamId"] = song["id"]
    else:
        # Not here to play: what the feed says about it.
        published = episode.published_at
        entry = {
            "isDir": False,
            "album": show.title or None,
            "artist": show.author or None,
            "year": published.year if published is not None else None,
            "duration": (episode.duration_ms + 500) // 1000 if episode.duration_ms else None,
            "size": episode.enclosure_bytes if episode.enclosure_bytes and episode.enclosure_bytes > 0 else None,
            "contentType": episode.enclosure_type or None,
            "created": episode.first_seen_at,
            "type": "podcast",
            "isVideo": False,
        }
    entry["id"] = mapping.episode_id(episode.pk)
    entry["title"] = episode.title or entry.get("title") or episode.enclosure_url
    entry["channelId"] = mapping.channel_id(show.pk)
    entry["description"] = plain_text(episode.description)
    entry["status"] = EPISODE_STATUS.get(episode.state, "new")
    entry["publishDate"] = episode.published_at
    return entry


def _episodes(call: Call, episodes: Sequence[FeedEpisode], shows: dict[int, Subscription]) -> list[dict[str, Any]]:
    """Each episode's entry; the downloaded ones' songs read in one batch (common.songs_by_id: the tracks the
    user may see, with their play counts and resume points)."""
    track_ids = [e.track_id for e in episodes if e.track_id is not None and e.state == EpisodeState.DOWNLOADED]
    songs = {song["id"]: song for song in songs_by_id(call.user, track_ids)}
    return [_episode(episode, shows[episode.subscription_id], songs) for episode in episodes]


def _channel(subscription: Subscription, episodes: list[dict[str, Any]] | None) -> dict[str, Any]:
    # The show's cover is the one its downloaded episodes carry (the podcast library's album of the show);
    # until one is downloaded, apps load originalImageUrl.
    cover = next((entry["coverArt"] for entry in episodes or () if entry.get("coverArt")), None)
    return {
        "id": mapping.channel_id(subscription.pk),
        "url": subscription.feed_url,
        "title": subscription.title or None,
        "description": plain_text(subscription.description),
        "coverArt": cover,
        "originalImageUrl": subscription.image_url or None,
        "status": _channel_status(subscription),
        "errorMessage": subscription.last_error or None if subscription.failures else None,
        "episode": episodes,
    }


def _feed_episodes(subscriptions: Iterable[Subscription]) -> QuerySet[FeedEpisode]:
    return FeedEpisode.objects.filter(subscription__in=list(subscriptions)).order_by(*NEWEST_FIRST)


@endpoint("getPodcasts")
def get_podcasts(call: Call) -> dict[str, Any]:
    """Every show the user can see (or the one of `id`), with its episodes newest first unless
    `includeEpisodes=false`."""
    value = call.params.get("id")
    if value:
        shows = [subscription_get(user=call.user, subscription_id=mapping.parse_pk(value, mapping.CHANNEL))]
    else:
        shows = list(subscription_list(user=call.user))
    by_pk = {show.pk: show for show in shows}
    episodes: dict[int, list[dict[str, Any]]] = {pk: [] for pk in by_pk}
    include = call.params.flag("includeEpisodes", True)
    if include and shows:
        listed = list(_feed_episodes(shows))
        for entry, episode in zip(_episodes(call, listed, by_pk), listed, strict=True):
            episodes[episode.subscription_id].append(entry)
    return {"podcasts": {"channel": [_channel(show, episodes[show.pk] if include else None) for show in shows]}}


@endpoint("getNewestPodcasts")
def get_newest_podcasts(call: Call) -> dict[str, Any]:
    """The most recently published downloaded episodes across the user's shows (what they can play now)."""
    count = call.params.count("count", 20)
    shows = {show.pk: show for show in subscription_list(user=call.user)}
    listed = list(_feed_episodes(shows.values()).filter(state=EpisodeState.DOWNLOADED)[:count]) if shows else []
    return {"newestPodcasts": {"episode": _episodes(call, listed, shows)}}


def _episode_of(call: Call) -> FeedEpisode:
    return episode_get(user=call.user, episode_id=mapping.parse_pk(call.params.require("id"), mapping.EPISODE))


@endpoint("getPodcastEpisode")
def get_podcast_episode(call: Call) -> dict[str, Any]:
    episode = _episode_of(call)
    return {"podcastEpisode": _episodes(call, [episode], {episode.subscription_id: episode.subscription})[0]}


def _managing(call: Call, library: Library) -> None:
    """What the user may see but not manage is "not authorized" (50); what they may not see never gets here
    (the selectors answered 70)."""
    if not may_manage(call.user, library):
        raise SubsonicError(ErrorCode.NOT_AUTHORIZED, NOT_ALLOWED)


@endpoint("refreshPodcasts")
def refresh_podcasts(call: Call) -> dict[str, Any]:
    """Queue a refresh of every show the user may manage (a success also lifts an auto-download pause)."""
    libraries = manageable_libraries(call.user)
    if not libraries.exists():
        raise SubsonicError(ErrorCode.NOT_AUTHORIZED, NOT_ALLOWED)
    for subscription in subscription_list(user=call.user).filter(library__in=libraries):
        subscription_refresh_now(user=call.user, subscription=subscription)
    return {}


@endpoint("createPodcastChannel")
def create_podcast_channel(call: Call) -> dict[str, Any]:
    """Subscribe to `url` in the first podcast library the user may manage (or the one of `musicFolderId`,
    which Revenge also takes: a server may have several); its first refresh is queued."""
    url = call.params.require("url")
    libraries = manageable_libraries(call.user).order_by("pk")
    folder = call.params.number("musicFolderId")
    if folder is not None:
        if not Library.objects.visible_to(call.user).filter(pk=folder).exists():
            raise not_found("Music folder")
        libraries = libraries.filter(pk=folder)
    library = libraries.first()
    if library is None:
        raise SubsonicError(ErrorCode.NOT_AUTHORIZED, NOT_ALLOWED)
    subscription_create(user=call.user, library=library, feed_url=url)
    return {}


@endpoint("deletePodcastChannel")
def delete_podcast_channel(call: Call) -> dict[str, Any]:
    """Unsubscribe; downloaded episodes stay tracks of the library (as in the REST API)."""
    pk = mapping.parse_pk(call.params.require("id"), mapping.CHANNEL)
    subscription = subscription_get(user=call.user, subscription_id=pk)
    _managing(call, subscription.library)
    subscription_delete(user=call.user, subscription=subscription)
    return {}


@endpoint("downloadPodcastEpisode")
def download_podcast_episode(call: Call) -> dict[str, Any]:
    """Queue the download (one already queued, being fetched or downloaded is left as it is)."""
    episode = _episode_of(call)
    _managing(call, episode.subscription.library)
    episodes_download_request(episode_ids=[episode.pk])
    return {}


@endpoint("deletePodcastEpisode")
def delete_podcast_episode(call: Call) -> dict[str, Any]:
    """Delete the episode's file and renditions: it stays listed as deleted, downloadable again, and its
    track keeps everyone's progress and listens (retention's rule)."""
    episode = _episode_of(call)
    _managing(call, episode.subscription.library)
    episode_delete(user=call.user, episode=episode)
    return {}
