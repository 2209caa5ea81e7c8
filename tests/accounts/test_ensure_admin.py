"""The first-start box of `manage.py ensure_admin` (what `make run` prints once)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def run(monkeypatch, password: str | None) -> str:
    monkeypatch.setenv("REVENGE_ADMIN_USER", "boss")
    monkeypatch.setenv("PORT", "8123")
    if password is None:
        monkeypatch.delenv("REVENGE_ADMIN_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("REVENGE_ADMIN_PASSWORD", password)
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_a_generated_password_is_shown_once_and_said_so(monkeypatch):
    output = run(monkeypatch, None)
    password = output.split("password: ", 1)[1].splitlines()[0]
    assert get_user_model().objects.get(username="boss").check_password(password)
    assert "   URL:      http://127.0.0.1:8123/admin/\n" in output
    assert " Keep it: it is shown only this once.\n" in output


def test_a_password_from_the_environment_is_neither_shown_nor_called_shown_once(monkeypatch):
    output = run(monkeypatch, "a long chosen secret 123")
    assert get_user_model().objects.get(username="boss").check_password("a long chosen secret 123")
    assert "a long chosen secret 123" not in output
    assert "   password: the one in REVENGE_ADMIN_PASSWORD (not shown)\n" in output
    assert " Sign in with the password you set.\n" in output
    assert "shown only this once" not in output


def test_an_existing_admin_prints_only_where_to_sign_in(monkeypatch):
    run(monkeypatch, None)
    assert run(monkeypatch, None) == "Admin account exists. Sign in at http://127.0.0.1:8123/admin/\n"
