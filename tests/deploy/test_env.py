"""deploy/.env.example and deploy/systemd/revenge.env.example, and the README's deployment guide."""

from __future__ import annotations

import re

from django.core.management import get_commands

from tests.conftest import BASE_DIR
from tests.deploy.kit import DEPLOY

# --- the env examples and the guide ------------------------------------------------------------------

ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]+)=", re.MULTILINE)


def readme_variables() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", (BASE_DIR / "README.md").read_text(), re.MULTILINE))


def compose_variables() -> set[str]:
    """Variables the compose files interpolate (${VAR...}); $$VAR is the container's own shell."""
    text = (DEPLOY / "docker-compose.yml").read_text() + (DEPLOY / "docker-compose.traefik.yml").read_text()
    return set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", text))


def test_env_examples_hold_only_documented_or_compose_variables():
    compose_env = set(ASSIGNMENT.findall((DEPLOY / ".env.example").read_text()))
    systemd_env = set(ASSIGNMENT.findall((DEPLOY / "systemd/revenge.env.example").read_text()))

    assert {"SECRET_KEY", "HLS_SIGNING_SECRET", "POSTGRES_PASSWORD", "REVENGE_HTTPS", "LOG_FORMAT"} <= compose_env
    assert compose_env - readme_variables() - compose_variables() == set()
    assert systemd_env - readme_variables() == set()
    # Everything compose needs from .env is described there.
    assert compose_variables() - compose_env == set()


def test_env_examples_carry_the_production_values():
    text = (DEPLOY / ".env.example").read_text()
    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", text, re.MULTILINE))

    for key, value in {
        "REVENGE_HTTPS": "1",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
        "LOG_FORMAT": "json",
        "USE_X_ACCEL_REDIRECT": "1",
    }.items():
        assert values[key] == value, key
    for secret in ("SECRET_KEY", "HLS_SIGNING_SECRET", "POSTGRES_PASSWORD"):
        assert values[secret] == "", secret  # compose refuses to start until it is filled in
    assert "secrets.token_urlsafe(50)" in text and "openssl rand -hex 32" in text


def test_the_guides_management_commands_exist():
    readme = (DEPLOY.parent / "README.md").read_text()
    guide = readme[readme.index("## Deployment") : readme.index("## Decisions and departures")]
    used = set(re.findall(r"(?:manage\.py|revenge-manage) ([a-z_]+)", guide))

    assert {"migrate", "collectstatic", "createsuperuser"} <= used
    assert used - set(get_commands()) == set()
