from __future__ import annotations

from rest_framework import status

from apps.ops.errors import DomainError


class PlaylistVersionConflict(DomainError):
    """The client's `If-Match` names an older version: someone else changed the playlist since it read it."""

    status_code = status.HTTP_409_CONFLICT
    code = "version_conflict"

    def __init__(self, *, current: int):
        super().__init__(f"The playlist changed since you read it: it is at version {current}. Read it again.")
        self.current = current


class TracksNotFound(DomainError):
    """Tracks that do not exist or that the user may not see (the two are told apart nowhere)."""

    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"

    def __init__(self, track_ids: list[int]):
        listed = ", ".join(str(pk) for pk in track_ids[:20])
        super().__init__(
            f"No such track: {listed}. Nothing was added.", fields={"track_ids": [f"Not found: {listed}."]}
        )


class NotTheOwner(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "permission_denied"

    def __init__(self) -> None:
        super().__init__("Only the playlist's owner can change it.")
