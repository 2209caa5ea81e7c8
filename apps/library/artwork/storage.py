"""The one owner of the artwork layout, on disk and under the signed `/art/` prefix:

    <ARTWORK_ROOT>/originals/<h2>/<hash>          the image as found (never served: it may be any size)
    <ARTWORK_ROOT>/<h2>/<hash>/<size>.<ext>       the variants, size in 64, 128, 300, 600, original
    <ARTWORK_ROOT>/.tmp/                          variants being made, published by one rename
    /art/<expires>/<signature>/<hash>/<size>.<ext>  signed over "<expires>/<hash>" (apps.ops.signing),
                                                   nginx's alias maps it onto the variants folder

`<h2>` is the hash's first two hex digits, so no folder holds more than 1/256 of the covers.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from django.conf import settings

from apps.library.artwork.images import ImageInfo, image_check
from apps.ops.signing import secure_link_check, secure_link_expiry, secure_link_signature

SIZES: Final = (64, 128, 300, 600)
ORIGINAL: Final = "original"
FORMATS: Final = {"webp": "image/webp", "jpeg": "image/jpeg"}
EXTENSIONS: Final = {"webp": "webp", "jpeg": "jpg"}
TMP_DIR_NAME: Final = ".tmp"
HASH_PATTERN: Final = re.compile(r"[0-9a-f]{64}")


def variant_name(size: int | str, fmt: str) -> str:
    return f"{size}.{EXTENSIONS[fmt]}"


def variant_names() -> list[str]:
    return [variant_name(size, fmt) for size in (*SIZES, ORIGINAL) for fmt in FORMATS]


def size_snap(requested: int | None) -> int | str:
    """The stored size to serve for a requested one: the next size up, the original above the largest."""
    if requested is None:
        return ORIGINAL
    for size in SIZES:
        if requested <= size:
            return size
    return ORIGINAL


# (content hash, pixel limit) -> what the header said, for images already stored (see ArtworkStorage.store).
_checked: dict[tuple[str, int], ImageInfo] = {}
_CHECKED_MAX = 4096


def _remember(key: tuple[str, int], info: ImageInfo) -> None:
    if len(_checked) >= _CHECKED_MAX:
        _checked.clear()
    _checked[key] = info


@dataclass(frozen=True)
class StoredImage:
    hash: str
    info: ImageInfo
    size_bytes: int


@dataclass(frozen=True)
class ArtworkStorage:
    root: Path

    @classmethod
    def from_settings(cls) -> ArtworkStorage:
        return cls(Path(settings.ARTWORK_ROOT))

    def original(self, content_hash: str) -> Path:
        return self.root / "originals" / content_hash[:2] / content_hash

    def folder(self, content_hash: str) -> Path:
        return self.root / content_hash[:2] / content_hash

    def file(self, content_hash: str, name: str) -> Path:
        return self.folder(content_hash) / name

    @property
    def tmp_root(self) -> Path:
        return self.root / TMP_DIR_NAME

    def is_published(self, content_hash: str) -> bool:
        return self.folder(content_hash).is_dir()

    def store(self, data: bytes, *, max_bytes: int, max_pixels: int) -> StoredImage:
        """Check the image and keep its bytes once under their hash; BadImage (with the reason) when it may not
        be used. An image stored before was checked then: only its header is read again, once per process."""
        if len(data) > max_bytes or not data:
            image_check(data, max_bytes=max_bytes, max_pixels=max_pixels)  # raises with the reason
        content_hash = hashlib.sha256(data).hexdigest()  # 4 µs for a 6 kB cover: blake2b is no faster here
        # Plain strings, not Path objects: a scan calls this once per file (pathlib's joins were 0.1 ms each).
        folder = os.path.join(self.root, "originals", content_hash[:2])
        path = os.path.join(folder, content_hash)
        key = (content_hash, max_pixels)
        info = _checked.get(key)
        # The stat stays even when the header is known: a cover collected since (artwork_collect) is stored again.
        if os.path.isfile(path):
            # Checked when stored; the same cover embedded in every file of an album is described once per
            # process (Pillow's header parse is ~0.3 ms, a third of a file's read).
            if info is None:
                info = image_check(data, max_bytes=max_bytes, max_pixels=max_pixels, decode=False)
                _remember(key, info)
            return StoredImage(content_hash, info, len(data))
        info = image_check(data, max_bytes=max_bytes, max_pixels=max_pixels)
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        except FileNotFoundError:  # the first cover of its <h2> folder
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        # Written beside its final name and renamed: a reader never sees half an image, and two scanner
        # processes storing the same bytes both succeed.
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        # The next file with the same cover (the rest of its album) needs no second header parse: 200 distinct
        # covers in 2 000 files, 200 parses fewer (make bench-scan BENCH_COVERS=1).
        _remember(key, info)
        return StoredImage(content_hash, info, len(data))

    @staticmethod
    def url_expiry(now: float | None = None) -> int:
        """Rounded up to the day: a cover's URL stays the same all day, so browsers keep it cached."""
        return secure_link_expiry(lifetime_s=settings.ART_URL_LIFETIME_S, step_s=86400, now=now)

    @staticmethod
    def url_prefix(content_hash: str, *, expires: int | None = None) -> str:
        expires = ArtworkStorage.url_expiry() if expires is None else expires
        signature = secure_link_signature(expires=expires, resource=content_hash, secret=settings.HLS_SIGNING_SECRET)
        return f"/art/{expires}/{signature}/{content_hash}"

    @staticmethod
    def url(content_hash: str, size: int | str, fmt: str, *, expires: int | None = None) -> str:
        return f"{ArtworkStorage.url_prefix(content_hash, expires=expires)}/{variant_name(size, fmt)}"

    @staticmethod
    def urls(content_hash: str, *, expires: int | None = None) -> dict[str, dict[str, str]]:
        """Every variant's signed URL by format then size: {"webp": {"64": url, ..., "original": url}, "jpeg": ...}."""
        prefix = ArtworkStorage.url_prefix(content_hash, expires=expires)
        return {
            fmt: {str(size): f"{prefix}/{variant_name(size, fmt)}" for size in (*SIZES, ORIGINAL)} for fmt in FORMATS
        }

    @staticmethod
    def check(*, expires: str, signature: str, content_hash: str, now: float | None = None) -> int:
        """200, 403 (bad signature) or 410 (expired): nginx's verdicts on the same URL."""
        return secure_link_check(
            expires=expires, signature=signature, resource=content_hash, secret=settings.HLS_SIGNING_SECRET, now=now
        ).status
