"""The one owner of the artwork layout, on disk and under the signed `/art/` prefix:

    <ARTWORK_ROOT>/originals/<h2>/<hash>          the image as found (never served: it may be any size)
    <ARTWORK_ROOT>/<h2>/<hash>/<size>.<ext>       the variants, size in 64, 128, 300, 600, original
    <ARTWORK_ROOT>/.tmp/                          variants being made, published by one rename
    /art/<expires>/<signature>/<hash>/<size>.<ext>  signed over "<expires>/<hash>" (apps.ops.signing),
                                                   nginx's alias maps it onto the variants folder

`<h2>` is the hash's first two hex digits, so no folder holds more than 1/256 of the covers.

Collection (apps.library.services.artwork_collect) deletes an original only when its mtime is older than the
grace period, after moving it aside with one rename; `store` refreshes the mtime of an original it finds
(instead of only checking that it exists). So whichever comes first, a scan that is about to reference a cover
either refreshed it before the move (collection sees the fresh mtime and puts it back) or finds it gone (and
writes it again): no check-then-act between the two.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
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
# original's path -> when this process last refreshed its mtime (time.monotonic()). Within this many seconds
# the next file with the same cover needs no system call at all; ARTWORK_COLLECT_GRACE_S (at least an hour)
# is what makes that safe against collection.
ARTWORK_TOUCH_EVERY_S: Final = 600
_touched: dict[str, float] = {}


def _remember(key: tuple[str, int], info: ImageInfo) -> None:
    if len(_checked) >= _CHECKED_MAX:
        _checked.clear()
    _checked[key] = info


def _touched_now(path: str, now: float) -> None:
    if len(_touched) >= _CHECKED_MAX:
        _touched.clear()
    _touched[path] = now


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
        now = time.monotonic()
        if info is not None and now - _touched.get(path, -ARTWORK_TOUCH_EVERY_S) < ARTWORK_TOUCH_EVERY_S:
            return StoredImage(content_hash, info, len(data))
        try:
            # Found: its mtime is refreshed (one system call, like the stat it replaces), which keeps it from
            # artwork_collect while the scan that met it references it.
            os.utime(path)
        except FileNotFoundError:
            pass
        else:
            # Checked when stored; the same cover embedded in every file of an album is described once per
            # process (Pillow's header parse is ~0.3 ms, a third of a file's read).
            if info is None:
                info = image_check(data, max_bytes=max_bytes, max_pixels=max_pixels, decode=False)
                _remember(key, info)
            _touched_now(path, now)
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
        # The next file with the same cover (the rest of its album) needs no second header parse and no system
        # call: 200 distinct covers in 2 000 files, 200 parses and 1 800 stats fewer (make bench-scan BENCH_COVERS=1).
        _remember(key, info)
        _touched_now(path, now)
        return StoredImage(content_hash, info, len(data))

    def original_discard(self, content_hash: str, *, untouched_since: float) -> bool:
        """Delete the original unless its mtime is `untouched_since` (a Unix time) or later, i.e. a scan met it
        since. Moved aside first, then judged: a `store` before the move left a fresh mtime (put back), one
        after it finds nothing and writes the bytes again. False when it stays."""
        path = str(self.original(content_hash))
        aside = f"{os.path.dirname(path)}/.gc-{content_hash}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return True
        if os.stat(aside).st_mtime >= untouched_since:
            os.replace(aside, path)  # the same bytes if a scan wrote them again meanwhile
            return False
        os.unlink(aside)
        return True

    def variants_take(self, content_hash: str) -> Path | None:
        """Move the published variants aside (one rename, so none is served half-deleted); None if there were none."""
        aside = self.tmp_root / f"gc-{content_hash}-{uuid.uuid4().hex[:8]}"
        try:
            self.tmp_root.mkdir(parents=True, exist_ok=True)
            os.rename(self.folder(content_hash), aside)
        except FileNotFoundError:
            return None
        return aside

    def variants_give_back(self, content_hash: str, aside: Path) -> None:
        """Undo variants_take (the cover is referenced again); if its variants were published again meanwhile,
        those stay and these go."""
        try:
            os.rename(aside, self.folder(content_hash))
        except OSError:
            shutil.rmtree(aside, ignore_errors=True)

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
