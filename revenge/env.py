"""Typed readers for environment variables.

Every setting comes from the environment. A bad value stops the start with one clear line naming the
variable and what was expected (`ImproperlyConfigured`), instead of a traceback from deep inside a
library the first time the value is used.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return value.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r}: expected one of true/false, yes/no, on/off, 1/0.")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r}: expected an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number}: must be at least {minimum}.")
    if maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number}: must be at most {maximum}.")
    return number


def env_list(name: str, default: Sequence[str] = ()) -> list[str]:
    """Comma-separated values; blanks are dropped."""
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(name: str, default: str, choices: Sequence[str]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}.")
    return value


def env_url(name: str, default: str, *, schemes: Sequence[str]) -> str:
    value = env_str(name, default)
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise ImproperlyConfigured(
            f"{name}: {_redact(value)!r} is not a valid URL here; expected a scheme among {', '.join(schemes)}."
        )
    try:
        urlsplit(value).port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}: {_redact(value)!r} is not a valid URL: the port must be a number."
        ) from None
    return value


def env_cidrs(name: str, default: Sequence[str] = ()) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for item in env_list(name, default):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or CIDR range.") from None
    return networks


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    path = Path(value) if value else default
    if not path.is_absolute():
        raise ImproperlyConfigured(f"{name}={value!r}: expected an absolute path.")
    return path


def _redact(url: str) -> str:
    """Hide a password in a URL before it goes into an error message."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
