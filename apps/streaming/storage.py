"""The one owner of the rendition layout: `<RENDITIONS_ROOT>/<track>/<rendition_key>/<profile>/<file>` on disk,
the same `<track>/<rendition_key>` under the signed `/hls/<expires>/<signature>/` prefix (nginx's alias maps one
onto the other, deploy/nginx), and `.tmp/` for runs not yet published.

The transcoder writes here, the selectors, the `/hls/` view and the download read here, and whether a ready
rendition's folder is lost is decided here: one place to change when the layout does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import m3u8
from django.conf import settings

from apps.streaming.signing import hls_expiry, hls_signature

TMP_DIR_NAME: Final = ".tmp"
PLAYLIST_NAME: Final = "index.m3u8"  # in each profile's folder, next to its segments
# The EVENT playlist of a growing rendition (an interactive run writing in place): it lists only whole
# segments and ends with EXT-X-ENDLIST when the run does. Its own name, so that it alone is served
# `no-cache` (nginx cannot look inside a file) while index.m3u8, written once at the end, stays immutable.
LIVE_PLAYLIST_NAME: Final = "live.m3u8"
INIT_NAME: Final = "init.mp4"  # the fMP4 init segment
# A chunk's own playlist, in its run's work folder: read when the chunk is done (its segment durations).
CHUNK_PLAYLIST_NAME: Final = "chunk.m3u8"
# In a chunked rendition's key folder: which chunks are done (one file each, written when the chunk is) and
# the chunk the first listener asked for (the live playlists are contiguous from it); never served (the
# /hls/ view and nginx only serve files inside a profile's folder).
CHUNKS_DIR_NAME: Final = ".chunks"
LEAD_NAME: Final = ".lead"


@dataclass(frozen=True)
class RenditionStorage:
    root: Path

    @classmethod
    def from_settings(cls) -> RenditionStorage:
        # Read per use, not at import: RENDITIONS_ROOT is a setting (and each test has its own).
        return cls(Path(settings.RENDITIONS_ROOT))

    @staticmethod
    def relative_path(track: int | str, rendition_key: str, profile: str | None = None) -> str:
        """`<track>/<rendition_key>[/<profile>]`: the folder under the root and the path under the signed
        prefix. `track` as the URL spells it when it comes from one ("045" is not the folder of track 45)."""
        path = f"{track}/{rendition_key}"
        return f"{path}/{profile}" if profile is not None else path

    def folder(self, track: int | str, rendition_key: str) -> Path:
        """The folder of every profile of one rendition key, published (renamed into place) as a whole."""
        return self.root / self.relative_path(track, rendition_key)

    def file(self, track: int | str, rendition_key: str, profile: str, name: str) -> Path:
        return self.root / self.relative_path(track, rendition_key, profile) / name

    @property
    def tmp_root(self) -> Path:
        """Where runs write before their one rename into place: never served."""
        return self.root / TMP_DIR_NAME

    def is_lost(self, track: int | str, rendition_key: str) -> bool:
        """A ready rendition's folder is gone from disk (deleted behind our back): it must be built again."""
        return not self.folder(track, rendition_key).is_dir()

    def growing_started(self, track: int | str, rendition_key: str, profiles: list[str]) -> bool:
        """Every profile of a growing rendition has its first whole segment listed (the live playlist is
        written by ffmpeg through a temp name and a rename, so a read never sees half of one)."""
        for profile in profiles:
            try:
                text = self.file(track, rendition_key, profile, LIVE_PLAYLIST_NAME).read_text()
            except (FileNotFoundError, NotADirectoryError):
                return False
            if "#EXTINF:" not in text:
                return False
        return bool(profiles)

    def chunk_lead(self, track: int | str, rendition_key: str) -> int | None:
        """The chunk a chunked rendition's run started with (its live playlists are contiguous from it)."""
        try:
            return int((self.folder(track, rendition_key) / LEAD_NAME).read_text())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None

    def files(self, track: int | str, rendition_key: str, profile: str) -> list[Path] | None:
        """A published rendition's files in play order (init segment first), or None if any is gone (then the
        rendition is lost as well)."""
        folder = self.root / self.relative_path(track, rendition_key, profile)
        try:
            playlist = m3u8.load(str(folder / PLAYLIST_NAME))
        except FileNotFoundError:
            return None
        files = [folder / m.uri for m in playlist.segment_map or [] if m.uri]
        files += [folder / segment.uri for segment in playlist.segments]
        return files if all(f.is_file() for f in files) else None

    @staticmethod
    def url_prefix(*, track_id: int, rendition_key: str, expires: int | None = None) -> str:
        """The signed `/hls/` prefix of a rendition: one signature covers the whole folder, because media
        playlists use relative segment URIs."""
        expires = hls_expiry() if expires is None else expires
        signature = hls_signature(expires=expires, track_id=track_id, rendition_key=rendition_key)
        return f"/hls/{expires}/{signature}/{RenditionStorage.relative_path(track_id, rendition_key)}"
