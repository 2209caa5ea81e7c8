"""Cover images made at test time (Pillow) and embedded into generated audio with mutagen: ID3 APIC, MP4
covr, FLAC picture blocks and Vorbis METADATA_BLOCK_PICTURE."""

from __future__ import annotations

import base64
import io
import zlib
from pathlib import Path

from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, ID3
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from PIL import Image


def image_bytes(color: tuple[int, int, int], size: tuple[int, int] = (400, 400), fmt: str = "JPEG", **save) -> bytes:
    out = io.BytesIO()
    mode = "CMYK" if fmt == "JPEG" and save.pop("cmyk", False) else "RGB"
    image = Image.new("RGB", size, color)
    if mode == "CMYK":
        image = image.convert("CMYK")
    image.save(out, fmt, **save)
    return out.getvalue()


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid PNG header claiming width x height pixels, with a few kB of zlib-compressed zeros: a
    decompression bomb (2.7 GB of RGB once decoded at the default size)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    compressor = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * (width * 3)
    data = b"".join(compressor.compress(row) for _ in range(50)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def embed(path: Path, data: bytes, *, mime: str = "image/jpeg", picture_type: int = 3) -> Path:
    """Put a picture into an audio file, the way taggers do for its format."""
    suffix = path.suffix.lower()
    if suffix == ".mp3":
        tags = ID3(path)
        tags.add(APIC(encoding=3, mime=mime, type=picture_type, desc=f"t{picture_type}", data=data))
        tags.save(path)
    elif suffix in (".m4a", ".m4b", ".mp4"):
        audio = MP4(path)
        fmt = MP4Cover.FORMAT_PNG if mime == "image/png" else MP4Cover.FORMAT_JPEG
        audio["covr"] = [MP4Cover(data, imageformat=fmt)]
        audio.save()
    elif suffix == ".flac":
        audio = FLAC(path)
        audio.add_picture(_picture(data, mime, picture_type))
        audio.save()
    elif suffix in (".ogg", ".opus"):
        audio = OggVorbis(path) if suffix == ".ogg" else OggOpus(path)
        encoded = base64.b64encode(_picture(data, mime, picture_type).write()).decode()
        audio["metadata_block_picture"] = [encoded]
        audio.save()
    else:
        raise ValueError(suffix)
    return path


def _picture(data: bytes, mime: str, picture_type: int) -> Picture:
    picture = Picture()
    picture.type, picture.mime, picture.data = picture_type, mime, data
    return picture
