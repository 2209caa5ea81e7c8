"""Finding and checking cover images. No ORM, no settings: the scanner's reader calls this in its worker
processes, with the limits passed in.

An image is accepted only as JPEG, PNG or WebP, within a byte and a pixel limit read from its header before
any pixel is decoded (a decompression bomb is refused unopened), and only if it then decodes (a truncated or
corrupt file is refused here, at scan time, so the previous good cover stays). GIF and SVG are refused: an
SVG can carry script and is never served, a GIF is not a cover format any client expects.
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from dataclasses import dataclass
from typing import Any

from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3Tags
from mutagen.mp4 import MP4Cover, MP4Tags
from PIL import Image, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})
MIME_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
FRONT_COVER = 3  # ID3 APIC / FLAC picture type "Cover (front)"
# In this order of preference, case-insensitive: cover.*, folder.*, front.*, album.*, AlbumArt*.
_FOLDER_NAMES = [re.compile(rf"^{stem}\.(?:jpe?g|png|webp)$", re.I) for stem in ("cover", "folder", "front", "album")]
_FOLDER_NAMES.append(re.compile(r"^albumart.*\.(?:jpe?g|png|webp)$", re.I))

# Pillow's own bomb guard is a warning up to twice its limit; the limit here is ours, checked first.
Image.MAX_IMAGE_PIXELS = None


class BadImage(Exception):
    """Why an image is not used (the text is shown to the admin on the album)."""


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int
    height: int


def is_image_name(name: str) -> bool:
    return name[name.rfind(".") :].lower() in IMAGE_EXTENSIONS


def folder_image_pick(names: list[str], *, any_image: bool = False) -> str | None:
    """The folder image to use among a folder's file names: cover > folder > front > album > AlbumArt*, else
    (a book's folder: `any_image`) the first image by name."""
    for pattern in _FOLDER_NAMES:
        matches = sorted(name for name in names if pattern.match(name))
        if matches:
            return matches[0]
    if any_image:
        images = sorted((name for name in names if is_image_name(name)), key=str.lower)
        return images[0] if images else None
    return None


def image_check(data: bytes, *, max_bytes: int, max_pixels: int, decode: bool = True) -> ImageInfo:
    """The image's type and size if it may be used as a cover; BadImage with the reason otherwise. Without
    `decode`, only the header is read (an image checked in full before)."""
    if not data:
        raise BadImage("empty image (0 bytes)")
    if len(data) > max_bytes:
        raise BadImage(f"image of {len(data) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB limit")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))  # reads the header only
    except UnidentifiedImageError:
        head = data[:256].lstrip().lower()
        if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
            raise BadImage("SVG is not accepted as a cover (only JPEG, PNG or WebP)") from None
        raise BadImage("not an image (neither JPEG, PNG nor WebP)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises anything on a corrupt header; refused, said why
        raise BadImage(f"unreadable image header ({type(exc).__name__})") from None
    with image:
        if image.format not in MIME_TYPES:
            raise BadImage(f"{image.format} is not accepted as a cover (only JPEG, PNG or WebP)")
        width, height = image.size
        if width < 1 or height < 1:
            raise BadImage("image without pixels")
        if width * height > max_pixels:
            raise BadImage(
                f"image of {width}×{height} pixels, over the limit of {max_pixels / 1e6:.0f} megapixels (not decoded)"
            )
        try:
            if not decode:
                pass
            elif image.format == "JPEG":
                image.draft("RGB", (64, 64))  # every block is still read, at an eighth of the decoding cost
                image.load()
            else:
                image.load()
        except Exception as exc:  # noqa: BLE001 - truncated or corrupt data: refused, with Pillow's words
            raise BadImage(f"corrupt or truncated {image.format} ({str(exc)[:120] or type(exc).__name__})") from None
        return ImageInfo(mime=MIME_TYPES[image.format], width=width, height=height)


def embedded_picture(audio: Any) -> bytes | None:
    """The front cover embedded in a file mutagen opened: ID3 APIC of type 3 else any APIC, MP4 `covr`,
    FLAC picture blocks or Vorbis/Opus METADATA_BLOCK_PICTURE (type 3 else the first). None without one."""
    tags = getattr(audio, "tags", None)
    if isinstance(tags, ID3Tags):
        frames = tags.getall("APIC")
        return _front([(frame.type, frame.data) for frame in frames])
    if isinstance(tags, MP4Tags):
        covers = tags.get("covr") or []
        return bytes(covers[0]) if covers and isinstance(covers[0], MP4Cover | bytes) else None
    pictures: list[tuple[int, bytes]] = []
    if isinstance(audio, FLAC):
        pictures = [(picture.type, picture.data) for picture in audio.pictures]
    if not pictures and tags is not None and hasattr(tags, "get"):
        for encoded in tags.get("metadata_block_picture", []) or []:
            try:
                picture = Picture(base64.b64decode(encoded))
            except Exception:  # noqa: BLE001 - mutagen raises anything on a broken block: skipped
                continue
            pictures.append((picture.type, picture.data))
    return _front(pictures)


def _front(pictures: list[tuple[int, bytes]]) -> bytes | None:
    for kind, data in pictures:
        if kind == FRONT_COVER:
            return bytes(data)
    return bytes(pictures[0][1]) if pictures else None
