"""Run the podcast tasks a test queued (tests.podcasts.conftest gives each test its own queue), here, with
the test's settings: what a worker on the `podcasts` queue would do."""

from __future__ import annotations

import base64
import json

from celery import current_app

from apps.podcasts.services import dispatch
from apps.podcasts.services.downloads import DownloadInterrupted, episode_download
from apps.podcasts.services.subscriptions import subscription_refresh, subscriptions_refresh


def queued() -> list[tuple[str, list]]:
    with current_app.connection_for_write() as conn:
        client = conn.default_channel.client
        raw = client.lrange(dispatch.QUEUE, 0, -1)
        client.delete(dispatch.QUEUE)
    messages = []
    for item in reversed(raw):  # kombu LPUSHes: the oldest is last
        message = json.loads(item)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        messages.append((message["headers"]["task"], args))
    return messages


def drain(capture, *, rounds: int = 5) -> list[tuple[str, list, object]]:
    """Run queued tasks (and the tasks they queue) until none is left; returns (task, args, result)."""
    ran = []
    for _ in range(rounds):
        messages = queued()
        if not messages:
            break
        for task, args in messages:
            with capture(execute=True):
                if task == dispatch.REFRESH_TASK:
                    result: object = subscription_refresh(subscription_id=args[0], manual=args[1])
                elif task == dispatch.REFRESH_BATCH_TASK:
                    result = subscriptions_refresh(subscription_ids=args[0])
                elif task == dispatch.DOWNLOAD_TASK:
                    try:
                        result = episode_download(episode_id=args[0])
                    except DownloadInterrupted as exc:
                        result = exc
                else:
                    raise AssertionError(f"unexpected task {task}")
            ran.append((task, args, result))
    return ran
