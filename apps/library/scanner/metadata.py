"""Read one audio file with mutagen: stream properties, normalised tags and embedded chapters.

One `mutagen.File` open per file (no second pass in "easy" mode): tags, chapters and stream info all
come from the same parse, which is what keeps a full scan close to a bare mutagen loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import mutagen
from mutagen._vorbis import VComment
from mutagen.id3 import ID3Tags
from mutagen.mp3 import BitrateMode
from mutagen.mp4 import MP4, MP4FreeForm, MP4Tags

from apps.library.artwork.images import embedded_picture
from apps.library.scanner.lyrics import Candidate

AUDIO_EXTENSIONS = frozenset({".mp3", ".m4a", ".m4b", ".mp4", ".flac", ".ogg", ".oga", ".opus", ".wav"})

# Tag values are capped: a 2 MB lyrics frame does not belong in a JSON column read on every listing.
MAX_TAG_VALUE_CHARS = 2000

_ID3_FRAMES = {
    "TIT2": "title",
    "TPE1": "artist",
    "TPE2": "albumartist",
    "TALB": "album",
    "TCON": "genre",
    "TRCK": "tracknumber",
    "TPOS": "discnumber",
    "TDRC": "date",
    "TYER": "date",
    "TCOM": "composer",
    "TPE3": "conductor",
    "TIT3": "subtitle",
    "TSOA": "albumsort",
    "TSOT": "titlesort",
    "TSOP": "artistsort",
    "TSO2": "albumartistsort",
    "TPUB": "publisher",
    "TLAN": "language",
    "TIT1": "grouping",
    "TSST": "discsubtitle",
    "TCMP": "compilation",
    "TDRL": "releasedate",
    "TDES": "description",
}
_MP4_ATOMS = {
    "©nam": "title",
    "©ART": "artist",
    "aART": "albumartist",
    "©alb": "album",
    "©gen": "genre",
    "©day": "date",
    "©wrt": "composer",
    "©grp": "grouping",
    "desc": "description",
    "ldes": "description",
    "©cmt": "comment",
    "soal": "albumsort",
    "sonm": "titlesort",
    "soar": "artistsort",
    "soaa": "albumartistsort",
    "mvnm": "series",
    "©pub": "publisher",
    "cpil": "compilation",
}
_VORBIS_ALIASES = {
    "album artist": "albumartist",
    "album_artist": "albumartist",
    "year": "date",
    # MusicBrainz Picard's names for the release type: TXXX/MP4 freeform, and Vorbis.
    "musicbrainz album type": "releasetype",
    "musicbrainz_albumtype": "releasetype",
}
_CODECS = {
    "MP3": "mp3",
    "FLAC": "flac",
    "OggVorbis": "vorbis",
    "OggOpus": "opus",
    "OggFLAC": "flac",
    "WAVE": "pcm",
}
_FORMATS = {
    "MP3": "mp3",
    "MP4": "mp4",
    "FLAC": "flac",
    "OggVorbis": "ogg",
    "OggOpus": "ogg",
    "OggFLAC": "ogg",
    "WAVE": "wav",
}
# Opus always decodes at 48 kHz; its header's "input sample rate" is only a hint.
_FIXED_SAMPLE_RATES = {"OggOpus": 48000}
_VORBIS_CHAPTER = re.compile(r"chapter(\d+)$")
# Lyrics are read whole by _lyrics (apps.library.scanner.lyrics), not cut to a tag value's size.
_LYRICS_KEYS = frozenset({"lyrics", "unsyncedlyrics", "unsynced lyrics"})


class UnreadableFile(Exception):
    """The file is not audio that mutagen can read (corrupt, empty, or another type under an audio name)."""


@dataclass
class FileMetadata:
    format: str
    codec: str
    duration_ms: int
    bitrate_kbps: int | None
    sample_rate_hz: int | None
    channels: int | None
    tags: dict[str, list[str]] = field(default_factory=dict)
    chapters: list[dict[str, Any]] = field(default_factory=list)
    # Less audio in the file than its header claims (cut short): duration_ms is then what is there.
    truncated: bool = False
    # The embedded front cover's bytes, from the same parse (apps.library.artwork.images.embedded_picture).
    picture: bytes | None = None
    # Embedded lyrics texts (USLT, SYLT, ©lyr, LYRICS/UNSYNCEDLYRICS), from the same parse.
    lyrics: list[Candidate] = field(default_factory=list)


def read_metadata(path: str, size_bytes: int) -> FileMetadata:
    if size_bytes == 0:
        raise UnreadableFile("empty file (0 bytes)")
    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        # mutagen wraps I/O errors; a file deleted since the walk is "not there", not "unreadable".
        if exc.args and isinstance(exc.args[0], FileNotFoundError):
            raise exc.args[0] from None
        raise UnreadableFile(_describe(exc)) from None
    if audio is None or audio.info is None:
        raise UnreadableFile("not a recognised audio format")
    info = audio.info
    length_s = float(getattr(info, "length", 0) or 0)
    if length_s <= 0:
        raise UnreadableFile("no audio in the file (duration 0)")
    duration_ms = round(length_s * 1000)
    kind = type(audio).__name__
    present_ms = _cbr_mp3_present_ms(info, size_bytes) if kind == "MP3" else None
    truncated = False
    if present_ms is not None and present_ms < duration_ms - truncation_tolerance_ms(duration_ms):
        truncated = True
        duration_ms = max(present_ms, 1)
    bitrate = getattr(info, "bitrate", None) or round(size_bytes * 8 / length_s)
    tags = _normalise_tags(audio.tags)
    return FileMetadata(
        format=_FORMATS.get(kind, kind.lower()),
        codec=_codec(audio, kind),
        duration_ms=duration_ms,
        bitrate_kbps=round(bitrate / 1000) if bitrate else None,
        sample_rate_hz=getattr(info, "sample_rate", None) or _FIXED_SAMPLE_RATES.get(kind),
        channels=getattr(info, "channels", None) or None,
        tags=tags,
        chapters=_clean_chapters(_chapters(audio, tags), duration_ms),
        truncated=truncated,
        picture=_picture(audio),
        lyrics=_lyrics(audio.tags),
    )


def _lyrics(raw: Any) -> list[Candidate]:
    found: list[Candidate] = []
    if isinstance(raw, ID3Tags):
        for frame in raw.getall("SYLT"):
            # format 2: milliseconds; 1 (MPEG frames) cannot be timed without the frame length: skipped.
            if frame.format == 2 and frame.type in (0, 1) and frame.text:
                lines = tuple((int(start), str(text)) for text, start in frame.text)
                found.append(Candidate(source="SYLT", lines=lines, language=_language(frame.lang)))
        for frame in raw.getall("USLT"):
            if frame.text:
                found.append(Candidate(source="USLT", text=str(frame.text), language=_language(frame.lang)))
        for frame in raw.getall("TXXX"):
            if frame.desc.strip().lower() in _LYRICS_KEYS and frame.text:
                found.append(Candidate(source="TXXX", text="\n".join(str(text) for text in frame.text)))
    elif isinstance(raw, MP4Tags):
        for value in raw.get("\xa9lyr", []):
            found.append(Candidate(source="\xa9lyr", text=str(value)))
    elif isinstance(raw, VComment):
        for key, value in raw:
            if key.strip().lower() in _LYRICS_KEYS and value:
                found.append(Candidate(source=key.strip().upper(), text=str(value)))
    return found


def _language(code: Any) -> str:
    text = str(code or "").strip()
    return "" if text.lower() in ("xxx", "und", "") else text[:16]


def _picture(audio: Any) -> bytes | None:
    try:
        return embedded_picture(audio)
    except Exception:  # noqa: BLE001 - a malformed picture frame must not cost the file its tags
        return None


def truncation_tolerance_ms(duration_ms: int) -> int:
    """How far a measured duration may fall short of the claimed one before the file counts as cut short:
    a second, or 0.1 % of a long file (encoder delay and padding are a few dozen milliseconds)."""
    return max(1000, duration_ms // 1000)


def _cbr_mp3_present_ms(info: Any, size_bytes: int) -> int | None:
    """The duration of a constant-bitrate MP3 from the bytes after its first frame (every frame of a CBR
    stream has the same size). mutagen takes the length from the Xing/Info header's frame count when there
    is one, which a file cut short still carries; None when the stream is not CBR."""
    if getattr(info, "bitrate_mode", None) != BitrateMode.CBR or not getattr(info, "bitrate", 0):
        return None
    audio_bytes = size_bytes - int(getattr(info, "frame_offset", 0) or 0)
    return round(max(audio_bytes, 0) * 8 * 1000 / info.bitrate)


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:500]


def _codec(audio: Any, kind: str) -> str:
    if isinstance(audio, MP4):
        codec = getattr(audio.info, "codec", "") or ""
        return "aac" if codec.startswith("mp4a") else codec or "unknown"
    return _CODECS.get(kind, kind.lower())


def _text(value: Any) -> str:
    if isinstance(value, MP4FreeForm | bytes):
        value = bytes(value).decode("utf-8", errors="replace")
    return str(value).replace("\x00", "").strip()[:MAX_TAG_VALUE_CHARS]


def _add(tags: dict[str, list[str]], key: str, values: Any) -> None:
    if not isinstance(values, list | tuple):
        values = [values]
    for value in values:
        text = _text(value)
        if text and text not in tags.setdefault(key, []):
            tags[key].append(text)
    if not tags.get(key):
        tags.pop(key, None)


def _normalise_tags(raw: Any) -> dict[str, list[str]]:
    """Every format's tags as {lower-case key: [values]}: ID3 frames, MP4 atoms and Vorbis comments
    mapped onto the same names (title, artist, albumartist, album, genre, tracknumber, discnumber,
    date, series...). Pictures and binary frames are left out."""
    tags: dict[str, list[str]] = {}
    if raw is None:
        return tags
    if isinstance(raw, ID3Tags):
        for frame in raw.values():
            frame_id = frame.FrameID
            if frame_id == "TCON":
                _add(tags, "genre", list(frame.genres))
            elif frame_id in _ID3_FRAMES:
                _add(tags, _ID3_FRAMES[frame_id], [str(text) for text in frame.text])
            elif frame_id == "TXXX" and frame.desc and frame.desc.strip().lower() not in _LYRICS_KEYS:
                key = frame.desc.strip().lower()
                _add(tags, _VORBIS_ALIASES.get(key, key), [str(text) for text in frame.text])
            elif frame_id == "COMM" and frame.text and not frame.desc.startswith("iTun"):
                # Not iTunes' own: its volume and gapless figures (iTunNORM, iTunSMPB...) would become an
                # episode's description.
                _add(tags, "comment", [str(text) for text in frame.text])
    elif isinstance(raw, MP4Tags):
        for atom, values in raw.items():
            if atom in _MP4_ATOMS:
                _add(tags, _MP4_ATOMS[atom], values)
            elif atom in ("trkn", "disk") and values:
                number, total = values[0]
                key = "tracknumber" if atom == "trkn" else "discnumber"
                _add(tags, key, f"{number}/{total}" if total else str(number))
            elif atom.startswith("----:"):
                key = atom.rsplit(":", 1)[-1].strip().lower()
                _add(tags, _VORBIS_ALIASES.get(key, key), values)
    elif isinstance(raw, VComment):
        for key, value in raw:
            key = key.strip().lower()
            if key == "metadata_block_picture" or key in _LYRICS_KEYS:
                continue
            _add(tags, _VORBIS_ALIASES.get(key, key), value)
    return tags


def _chapters(audio: Any, tags: dict[str, list[str]]) -> list[dict[str, Any]]:
    if isinstance(audio, MP4):
        found = getattr(audio, "chapters", None) or []
        return [{"title": chapter.title or "", "start_ms": round(chapter.start * 1000)} for chapter in found]
    raw = audio.tags
    if isinstance(raw, ID3Tags):
        chapters = []
        for frame in raw.getall("CHAP"):
            title_frame = frame.sub_frames.get("TIT2")
            title = str(title_frame.text[0]) if title_frame and title_frame.text else ""
            chapters.append({"title": title, "start_ms": frame.start_time, "end_ms": frame.end_time})
        return chapters
    if isinstance(raw, VComment):
        # CHAPTER001=00:01:02.500 and CHAPTER001NAME=Title (the Vorbis chapter extension).
        chapters = []
        for key, values in tags.items():
            match = _VORBIS_CHAPTER.match(key)
            if match and values:
                start = _parse_timestamp_ms(values[0])
                if start is not None:
                    name = tags.get(f"{key}name", [""])[0]
                    chapters.append({"title": name, "start_ms": start})
        return chapters
    return []


def _parse_timestamp_ms(text: str) -> int | None:
    match = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)", text.strip())
    if not match:
        return None
    hours, minutes, seconds = int(match[1]), int(match[2]), float(match[3])
    return round((hours * 3600 + minutes * 60 + seconds) * 1000)


def _clean_chapters(chapters: list[dict[str, Any]], duration_ms: int) -> list[dict[str, Any]]:
    """Sorted, inside the file, each ending where the next starts (or at the end); empty ones dropped."""
    ordered = sorted((c for c in chapters if 0 <= c["start_ms"] < duration_ms), key=lambda chapter: chapter["start_ms"])
    cleaned = []
    for index, chapter in enumerate(ordered):
        next_start = ordered[index + 1]["start_ms"] if index + 1 < len(ordered) else duration_ms
        end = min(chapter.get("end_ms") or next_start, next_start, duration_ms)
        if end > chapter["start_ms"]:
            # _text: NUL-free (PostgreSQL text refuses it) and trimmed, like every tag.
            cleaned.append({"title": _text(chapter["title"])[:500], "start_ms": chapter["start_ms"], "end_ms": end})
    return cleaned
