"""Bad settings stop the start with one clear line, not a traceback from deep inside."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from revenge.env import env_bool, env_cidrs, env_int, env_url
from tests.conftest import BASE_DIR


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe': expected one of true/false"),
        (
            "DATABASE_URL",
            "mysql://root@localhost/revenge",
            "DATABASE_URL: 'mysql://root@localhost/revenge' is not a valid URL",
        ),
        ("REDIS_URL", "localhost:6379", "REDIS_URL: 'localhost:6379' is not a valid URL"),
        ("METRICS_ALLOWED_CIDRS", "10.0.0.0/8,nonsense", "METRICS_ALLOWED_CIDRS: 'nonsense' is not an IP address"),
        ("API_PAGE_SIZE", "0", "API_PAGE_SIZE=0: must be at least 1"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml': expected one of text, json"),
        ("TOKEN_LOGIN_RATE", "ten", "TOKEN_LOGIN_RATE='ten'"),
        (
            "TOKEN_LOGIN_RATE",
            "0/min",
            "TOKEN_LOGIN_RATE='0/min': expected N/second, N/min, N/hour or N/day with N >= 1.",
        ),
        (
            "DATABASE_URL",
            "postgresql://u@h:notaport/db",
            "DATABASE_URL: 'postgresql://u@h:notaport/db' is not a valid URL",
        ),
        (
            "X_ACCEL_REDIRECT_PREFIX",
            "_originals",
            "X_ACCEL_REDIRECT_PREFIX='_originals': expected a path starting with /",
        ),
        ("TIME_ZONE", "Mars/Olympus", "TIME_ZONE='Mars/Olympus'"),
        ("SECRET_KEY", "short", "SECRET_KEY: use at least 32 random characters."),
        ("MEDIA_ROOT", "relative/path", "MEDIA_ROOT='relative/path': expected an absolute path."),
        ("REVENGE_PROFILE", "tiny", "REVENGE_PROFILE='tiny': expected one of default, small."),
    ],
)
def test_bad_value_stops_start_with_a_clear_message(name, value, message, process_env):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={**process_env, name: value},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {message}" in result.stderr


def test_url_password_is_hidden_in_the_message(monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", "ftp://user:hunter2@host/")
    with pytest.raises(ImproperlyConfigured) as error:
        env_url("CELERY_BROKER_URL", "", schemes=("amqp",))
    assert "hunter2" not in str(error.value)
    assert "ftp://user:***@host/" in str(error.value)


def test_typed_readers_parse_good_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", " 42 ")
    monkeypatch.setenv("X_CIDRS", "127.0.0.1, ::1/128,10.0.0.0/8")
    assert env_bool("X_BOOL") is True
    assert env_bool("X_UNSET", True) is True
    assert env_int("X_INT", 1, minimum=1) == 42
    assert [str(n) for n in env_cidrs("X_CIDRS")] == ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]


def test_log_format_json_writes_one_json_object_per_line(process_env):
    script = "import django, logging; django.setup(); logging.getLogger('revenge.test').warning('hello %s', 'there')"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env={**process_env, "LOG_FORMAT": "json", "DJANGO_SETTINGS_MODULE": "revenge.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["message"] == "hello there"
    assert line["level"] == "WARNING" and line["logger"] == "revenge.test" and "time" in line


def test_celery_task_events_are_off_unless_asked_for(process_env):
    """Nothing of Revenge reads task events; a Flower user turns them on with CELERY_TASK_EVENTS."""
    code = "from revenge.celery import app; print(app.conf.worker_send_task_events, app.conf.task_send_sent_event)"
    seen = {}
    for value in (None, "true"):
        env = {key: val for key, val in process_env.items() if key != "CELERY_TASK_EVENTS"}
        if value is not None:
            env["CELERY_TASK_EVENTS"] = value
        result = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        seen[value] = result.stdout.splitlines()[-1].split()
    assert seen == {None: ["False", "False"], "true": ["True", "True"]}
