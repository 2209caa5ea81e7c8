from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.factories import LibraryAccessFactory
from tests.pipeline import music_track, ready

pytestmark = pytest.mark.django_db


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, name
    return float(match.group(1))


def test_streaming_metrics(client, api_client, user, media: Path):
    before = client.get("/metrics").content.decode()
    published = 'revenge_transcode_jobs_total{status="published"}'
    starts = 'revenge_stream_starts_total{mode="direct"}'
    base_published = _value(before, published) if published in before else 0
    base_starts = _value(before, starts) if starts in before else 0
    track = music_track(media, seconds=3)
    LibraryAccessFactory(user=user, library=track.library)
    ready(track)
    api_client.force_authenticate(user)
    assert api_client.get(f"/api/v1/tracks/{track.pk}/stream").json()["mode"] == "direct"
    text = client.get("/metrics").content.decode()
    assert _value(text, published) == base_published + 1
    assert _value(text, starts) == base_starts + 1
    assert _value(text, "revenge_transcode_seconds_count") >= 1
    assert _value(text, 'revenge_renditions{status="ready"}') == 3
    assert 'revenge_transcode_queue_depth{queue="' in text
