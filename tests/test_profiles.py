"""REVENGE_PROFILE: one setting picks the defaults of gunicorn, the Procfile and Celery (revenge/profiles.py)."""

from __future__ import annotations

import json
import multiprocessing
import runpy
import shlex
import subprocess
import sys

import pytest
from django.conf import settings

from revenge.launcher import procfile_entries
from revenge.profiles import apply_profile_defaults, procfile, profile_name
from tests.conftest import BASE_DIR


def test_small_sets_its_defaults_and_leaves_what_is_set():
    env = {"REVENGE_PROFILE": "Small", "CELERY_WORKER_CONCURRENCY": "3", "WEB_CONCURRENCY": " "}
    apply_profile_defaults(env)
    assert env == {
        "REVENGE_PROFILE": "Small",
        "CELERY_WORKER_CONCURRENCY": "3",  # set by the user: kept
        "WEB_CONCURRENCY": "1",  # blank counts as unset
        "GUNICORN_THREADS": "4",
    }
    default = {"REVENGE_PROFILE": ""}
    apply_profile_defaults(default)
    assert default == {"REVENGE_PROFILE": ""}


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="REVENGE_PROFILE='tiny': expected one of default, small"):
        profile_name({"REVENGE_PROFILE": "tiny"})


def test_unknown_profile_stops_the_launcher_with_one_line(process_env):
    result = subprocess.run(
        [sys.executable, "-m", "revenge.launcher", "exec", "--", "true"],
        cwd=BASE_DIR, env={**process_env, "REVENGE_PROFILE": "tiny"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "REVENGE_PROFILE='tiny': expected one of default, small." in result.stderr
    assert "Traceback" not in result.stderr


def _queues(command: str) -> list[str]:
    words = shlex.split(command)
    return words[words.index("-Q") + 1].split(",")


def test_small_procfile_has_one_worker_for_every_queue_interactive_first():
    assert procfile(BASE_DIR, {"REVENGE_PROFILE": "small"}).name == "Procfile.small"
    assert procfile(BASE_DIR, {}).name == "Procfile"
    small = dict(procfile_entries(BASE_DIR / "Procfile.small"))
    default = dict(procfile_entries(BASE_DIR / "Procfile"))
    assert list(small) == ["web", "worker", "beat"]
    assert small["web"] == default["web"] and small["beat"] == default["beat"]
    queues = _queues(small["worker"])
    assert queues[0] == "transcode.interactive"
    assert sorted(queues) == sorted(queue.name for queue in settings.CELERY_TASK_QUEUES)
    # The default profile keeps a worker of its own for interactive transcodes (never behind bulk work).
    assert _queues(default["interactive"]) == ["transcode.interactive"]
    assert "transcode.interactive" not in _queues(default["worker"])


@pytest.mark.parametrize(
    ("profile", "expected"),
    [("default", {"polling_interval": 10}), ("small", {"polling_interval": 10, "queue_order_strategy": "priority"})],
)
def test_celery_polls_idle_redis_every_10_s_and_small_takes_queues_in_order(profile, expected, process_env):
    code = "import json; from revenge.celery import app; print(json.dumps(app.conf.broker_transport_options))"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR, env={**process_env, "REVENGE_PROFILE": profile}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    options = json.loads(result.stdout.strip().splitlines()[-1])
    options.pop("visibility_timeout")
    assert options == expected


@pytest.mark.parametrize(
    ("env", "workers", "threads"),
    [
        ({}, min(max(multiprocessing.cpu_count(), 2), 8), 4),
        ({"REVENGE_PROFILE": "small"}, 1, 4),
        ({"REVENGE_PROFILE": "small", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "2"}, 3, 2),
    ],
)
def test_gunicorn_defaults_follow_the_profile(env, workers, threads, monkeypatch):
    for name in ("REVENGE_PROFILE", "WEB_CONCURRENCY", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = runpy.run_path(str(BASE_DIR / "deploy" / "gunicorn.conf.py"))
    assert (config["workers"], config["threads"], config["worker_class"]) == (workers, threads, "gthread")
