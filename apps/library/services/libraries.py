from __future__ import annotations

import os

from django.core.exceptions import ValidationError


def library_root_paths_clean(paths: list[str]) -> list[str]:
    """Validate and normalise root folders: absolute, existing, readable directories, no duplicates."""
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
    if errors:
        raise ValidationError(errors)
    if not cleaned:
        raise ValidationError("Give at least one folder.")
    return cleaned
