"""Sending the podcast tasks, after commit, by name (the queue comes from CELERY_TASK_ROUTES: `podcasts`)."""

from __future__ import annotations

from celery import current_app
from django.db import transaction

REFRESH_TASK = "apps.podcasts.tasks.subscription_refresh_task"
REFRESH_BATCH_TASK = "apps.podcasts.tasks.subscriptions_refresh_task"
DOWNLOAD_TASK = "apps.podcasts.tasks.episode_download_task"
# None: routed by settings. Tests point it at a queue of their own (the Redis may serve a running worker).
QUEUE: str | None = None


def task_send(name: str, *args: object) -> None:
    values = list(args)
    transaction.on_commit(lambda: current_app.send_task(name, args=values, queue=QUEUE))
