"""Listening across a subscription: "mark all played" for one user, through playback's own service."""

from __future__ import annotations

from apps.accounts.types import User
from apps.playback.progress.services import progress_mark_played
from apps.podcasts.models import Subscription


def subscription_mark_played(*, user: User, subscription: Subscription) -> int:
    """Every downloaded (or once downloaded) episode's track completed for `user`; returns how many."""
    track_ids = list(
        subscription.episodes.filter(track__isnull=False, track__missing=False).values_list("track_id", flat=True)
    )
    for track_id in track_ids:
        progress_mark_played(user=user, track_id=track_id)
    return len(track_ids)
