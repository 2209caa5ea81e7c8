"""Thin tasks on the `podcasts` queue: take ids, call a service."""

from __future__ import annotations

from celery import shared_task

from apps.podcasts.services.downloads import (
    DownloadInterrupted,
    episode_download,
    episode_download_give_up,
    episodes_reclaim,
)
from apps.podcasts.services.retention import episodes_retention
from apps.podcasts.services.subscriptions import (
    subscription_refresh,
    subscriptions_refresh,
    subscriptions_refresh_due,
)

DOWNLOAD_RETRIES = 5


@shared_task(name="apps.podcasts.tasks.subscriptions_refresh_due_task")
def subscriptions_refresh_due_task() -> int:
    """Every minute (beat): queue a refresh of each subscription whose next poll is due, and again the
    downloads whose worker died."""
    episodes_reclaim()
    return len(subscriptions_refresh_due())


@shared_task(name="apps.podcasts.tasks.subscription_refresh_task", soft_time_limit=300, time_limit=330)
def subscription_refresh_task(subscription_id: int, manual: bool = False) -> dict[str, object]:
    result = subscription_refresh(subscription_id=subscription_id, manual=manual)
    return {"status": result.status, "new_episodes": result.new_episodes, "error": result.error}


@shared_task(name="apps.podcasts.tasks.subscriptions_refresh_task", soft_time_limit=1800, time_limit=1830)
def subscriptions_refresh_task(subscription_ids: list[int]) -> dict[str, int]:
    """A batch of due feeds (beat sends them 50 at a time)."""
    statuses: dict[str, int] = {}
    for result in subscriptions_refresh(subscription_ids=subscription_ids).values():
        statuses[result.status] = statuses.get(result.status, 0) + 1
    return statuses


@shared_task(
    name="apps.podcasts.tasks.episode_download_task",
    bind=True,
    # A worker killed mid-download: the message comes back and the next run resumes the part file.
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(DownloadInterrupted,),
    retry_backoff=30,
    retry_backoff_max=1800,
    max_retries=DOWNLOAD_RETRIES,
    soft_time_limit=3 * 3600,
    time_limit=3 * 3600 + 60,
)
def episode_download_task(self, episode_id: int) -> dict[str, object]:
    try:
        result = episode_download(episode_id=episode_id)
    except DownloadInterrupted as exc:
        if self.request.retries >= DOWNLOAD_RETRIES:
            episode_download_give_up(episode_id=episode_id, error=str(exc))
            return {"state": "failed", "error": str(exc)}
        raise
    return {"state": result.state, "track": result.track_id, "error": result.error}


@shared_task(name="apps.podcasts.tasks.episodes_retention_task")
def episodes_retention_task() -> int:
    """Hourly (beat): delete the downloaded episodes that the subscriptions' retention rules let go."""
    return len(episodes_retention())
