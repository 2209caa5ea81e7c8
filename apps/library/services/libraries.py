"""Library folders: what may be a library's root, checked in one place.

The admin form, the model's validation (so any future API or shell path too) and every scan call these:
a folder is compared by its resolved real path, so a symlink to `/` is `/`.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.library.models import Library

# System folders no library may be, be inside, or contain. Why each: /proc, /sys, /dev and /run are
# pseudo or volatile file systems (reads that never end or block, process memory, sockets); /etc, /root
# and /boot hold credentials, keys and the kernel; /bin, /sbin, /lib*, /usr are programs and their data;
# under /var, lib (databases, package and service state: PostgreSQL's own files), log, cache, spool and
# backups belong to services. Containing one of them is refused as well, so `/` and `/var` are refused
# as a whole; /home, /srv, /mnt, /media, /opt and /tmp stay allowed (music lives there).
SYSTEM_FOLDERS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/backups",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/spool",
)


class LibraryFoldersRefused(Exception):
    """A library's folders include one that may not be scanned (see library_folders_check)."""


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(path)


def _overlap(a: str, b: str) -> bool:
    """Whether real paths a and b are the same folder or one is inside the other."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


def _app_folders() -> list[tuple[str, str | os.PathLike[str]]]:
    """The server's own folders: its data (secret key, database, Redis), renditions, media, static files
    and code. A library over them would serve the secret key's neighbours and other libraries' renditions."""
    return [
        ("the server's data folder (REVENGE_DATA_DIR)", settings.DATA_DIR),
        ("the renditions folder (RENDITIONS_ROOT)", settings.RENDITIONS_ROOT),
        ("the media folder (MEDIA_ROOT)", settings.MEDIA_ROOT),
        ("the static files folder (STATIC_ROOT)", settings.STATIC_ROOT),
        ("the server's code", settings.BASE_DIR),
    ]


def library_folders_check(*, paths: list[str], library_id: int | None = None) -> list[str]:
    """Why any of `paths` may not be a folder of library `library_id` (None: a new library); [] if all may.

    Refused: a system folder (SYSTEM_FOLDERS), one of the server's own folders, or a folder that is, is
    inside or contains a folder of another library (two libraries over the same files would let a grant
    to one show the other's). Each message names the folder and why.
    """
    problems: list[str] = []
    others = Library.objects.exclude(pk=library_id) if library_id else Library.objects.all()
    other_roots = [(lib.name, _real(root)) for lib in others.only("name", "root_paths") for root in lib.root_paths]
    seen: list[tuple[str, str]] = []
    for path in paths:
        real = _real(path)
        shown = path if real == path else f"{path} (which is {real})"
        if real == "/":
            problems.append(f"{shown}: the whole system cannot be a library folder.")
            continue
        system = next((s for s in SYSTEM_FOLDERS if _overlap(real, _real(s))), None)
        if system is not None:
            if real == _real(system):
                problems.append(f"{shown}: a system folder cannot be a library folder.")
            elif real.startswith(_real(system) + "/"):
                problems.append(f"{shown}: inside the system folder {system}, where no library may be.")
            else:
                problems.append(f"{shown}: contains the system folder {system}, which no library may read.")
            continue
        app = next((what for what, folder in _app_folders() if _overlap(real, _real(folder))), None)
        if app is not None:
            problems.append(f"{shown}: overlaps {app}, which cannot be part of a library.")
            continue
        other = next((name for name, root in other_roots if _overlap(real, root)), None)
        if other is not None:
            problems.append(f"{shown}: overlaps a folder of the library “{other}”; libraries may not share files.")
            continue
        twin = next((earlier for earlier, root in seen if _overlap(real, root)), None)
        if twin is not None:
            problems.append(f"{shown}: overlaps {twin}, another folder of this library (its files would count twice).")
            continue
        seen.append((path, real))
    return problems


def library_root_paths_clean(paths: list[str], *, library_id: int | None = None) -> list[str]:
    """Validate and normalise root folders: absolute, existing, readable directories, no duplicates, none
    refused by library_folders_check. Raises ValidationError with one message per bad folder."""
    cleaned: list[str] = []
    errors: list[str] = []
    for raw in paths:
        path = raw.strip()
        if not path:
            continue
        if not os.path.isabs(path):
            errors.append(f"{path}: must be an absolute path (start with /).")
            continue
        path = os.path.normpath(path)
        if not os.path.exists(path):
            errors.append(f"{path}: does not exist.")
        elif not os.path.isdir(path):
            errors.append(f"{path}: is a file, not a folder.")
        elif not os.access(path, os.R_OK | os.X_OK):
            errors.append(f"{path}: cannot be read by the server.")
        elif path not in cleaned:
            cleaned.append(path)
    errors.extend(library_folders_check(paths=cleaned, library_id=library_id))
    if errors:
        raise ValidationError(errors)
    if not cleaned:
        raise ValidationError("Give at least one folder.")
    return cleaned


def library_folders_assert_safe(*, library: Library) -> None:
    """Defence in depth before a scan: raise LibraryFoldersRefused if the library's folders (as they
    resolve now: a symlink may have been swapped since they were saved) are refused."""
    problems = library_folders_check(paths=list(library.root_paths), library_id=library.pk)
    if problems:
        raise LibraryFoldersRefused(" ".join(problems))
