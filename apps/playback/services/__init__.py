"""Everything in playback that writes (progress lives in apps.playback.progress). Import from here."""

from apps.playback.progress.flush import progress_buffer_flush, progress_buffer_write
from apps.playback.progress.services import (
    DeviceUpdate,
    ProgressOutcome,
    progress_mark_played,
    progress_record,
    progress_record_many,
    progress_reset,
)
from apps.playback.services.library_items import bookmark_create, bookmark_delete, bookmark_update, play_queue_save
from apps.playback.services.sessions import (
    SessionEnded,
    SessionStart,
    session_end,
    session_heartbeat,
    session_start,
    sessions_close_idle,
)

__all__ = [
    "DeviceUpdate",
    "ProgressOutcome",
    "SessionEnded",
    "SessionStart",
    "bookmark_create",
    "bookmark_delete",
    "bookmark_update",
    "play_queue_save",
    "progress_buffer_flush",
    "progress_buffer_write",
    "progress_mark_played",
    "progress_record",
    "progress_record_many",
    "progress_reset",
    "session_end",
    "session_heartbeat",
    "session_start",
    "sessions_close_idle",
]
