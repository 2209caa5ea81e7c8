"""Reads, scoped to the libraries the user may see (404, not 403, for the rest)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet
from django.http import Http404

from apps.accounts.types import RequestUser
from apps.library.models import Album, Artwork, Library
from apps.playback.selectors import progress_of_tracks
from apps.podcasts.models import EpisodeState, FeedEpisode, Subscription

NEWEST_FIRST = ("-published_at", "-first_seen_at", "-id")


def subscription_list(*, user: RequestUser) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(library__in=Library.objects.visible_to(user))
        .select_related("library")
        .order_by("title", "id")
    )


def subscription_get(*, user: RequestUser, subscription_id: int) -> Subscription:
    try:
        return subscription_list(user=user).get(pk=subscription_id)
    except Subscription.DoesNotExist:
        raise Http404 from None


def subscription_cover(*, subscription: Subscription) -> Artwork | None:
    """The show's cover: its album's (the feed's image unless a cover that wins is there, see
    services.artwork), once sized; None before its first episode is downloaded."""
    albums = FeedEpisode.objects.filter(subscription=subscription, track__album__isnull=False).values("track__album_id")
    album = Album.objects.filter(pk__in=albums, artwork__isnull=False).select_related("artwork").order_by("pk").first()
    return album.cover if album is not None else None


def episode_list(*, user: RequestUser, subscription: Subscription) -> QuerySet[FeedEpisode]:
    """Every episode the feed ever listed, newest first (removed from the feed or not)."""
    return FeedEpisode.objects.filter(subscription=subscription).order_by(*NEWEST_FIRST)


def episode_get(*, user: RequestUser, episode_id: int) -> FeedEpisode:
    episodes = FeedEpisode.objects.filter(subscription__library__in=Library.objects.visible_to(user))
    try:
        return episodes.select_related("subscription__library").get(pk=episode_id)
    except FeedEpisode.DoesNotExist:
        raise Http404 from None


def episodes_listened(*, user: RequestUser, episodes: Iterable[FeedEpisode]) -> dict[int, tuple[bool, bool]]:
    """track id → (played, in progress) for this user, the Redis progress buffer included (playback's
    read, so a position stored a second ago counts)."""
    states = progress_of_tracks(user=user, track_ids=[e.track_id for e in episodes if e.track_id is not None])
    return {track_id: (state.completed, state.in_progress) for track_id, state in states.items()}


def episodes_new(*, user: RequestUser) -> QuerySet[FeedEpisode]:
    """New episodes across the user's subscriptions: downloaded, and neither started nor finished by them."""
    downloaded = FeedEpisode.objects.filter(
        subscription__library__in=Library.objects.visible_to(user), state=EpisodeState.DOWNLOADED
    )
    listened = episodes_listened(user=user, episodes=downloaded.only("id", "track_id"))
    started = [track_id for track_id, (played, in_progress) in listened.items() if played or in_progress]
    return downloaded.exclude(track_id__in=started).order_by(*NEWEST_FIRST)
