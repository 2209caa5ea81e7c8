"""REVENGE_PROFILE: the defaults of a machine class, chosen by one setting.

`default`: a server with a few cores and a few GB (the Procfile: gunicorn, a Celery worker for scans and
bulk work, a second one kept free for interactive transcodes, beat).
`small`: a 1-2 GB NAS or ARM board (Procfile.small: one gunicorn worker, one Celery worker process that
takes interactive transcodes before anything else, beat). Each value below is only a default: a variable
set in the environment wins. Read by settings, deploy/gunicorn.conf.py and the launcher, so that the
three agree without importing Django.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

PROFILES = ("default", "small")

# Measured by `make bench-footprint` (README, Sizing).
SMALL_DEFAULTS = {
    # One web process: a household's players and OpenSubsonic apps send a few requests a second, which one
    # process with threads serves; each further process costs ~70 MB.
    "WEB_CONCURRENCY": "1",
    "GUNICORN_THREADS": "4",
    # One Celery worker process (Procfile.small) for every queue, interactive first.
    "CELERY_WORKER_CONCURRENCY": "1",
}


def profile_name(environ: Mapping[str, str] | None = None) -> str:
    """The profile named by REVENGE_PROFILE (unset or blank: `default`). An unknown name is an error."""
    value = (environ if environ is not None else os.environ).get("REVENGE_PROFILE", "").strip().lower()
    value = value or "default"
    if value not in PROFILES:
        raise ValueError(f"REVENGE_PROFILE={value!r}: expected one of {', '.join(PROFILES)}.")
    return value


def profile_defaults(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    return dict(SMALL_DEFAULTS) if profile_name(environ) == "small" else {}


def apply_profile_defaults(environ: MutableMapping[str, str]) -> None:
    """Sets the profile's defaults that the environment does not set itself (a blank value counts as unset)."""
    for name, value in profile_defaults(environ).items():
        if not environ.get(name, "").strip():
            environ[name] = value


def procfile(base_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    return base_dir / ("Procfile.small" if profile_name(environ) == "small" else "Procfile")
