"""The artwork task against a bare Pillow loop over the same covers, and the worker's memory on hostile images.

    make bench-art              # BENCH_COVERS=12

(a) the ceiling: each test cover opened with Pillow and made into the same sizes (64/128/300/600 + original)
    and formats (WebP, progressive JPEG) with the same settings, nothing else;
(b) the artwork task end to end: artwork_variants_build on Artwork rows (claim the row, decode, EXIF and ICC
    handling, dominant colour, every variant into a temp folder, one rename, the row marked ready).
b/a is the task's throughput over the bare loop's (target >= 0.8). The covers: 1400x1400 JPEGs with detail
(noise over gradients, a scanned booklet's kind), a few PNGs and one CMYK, as a library has.

Then the peak RSS of a fresh worker process (a) idle after Django's set-up, (b) refusing the decompression bomb
(a 30 000 x 30 000 PNG of a few kB: the pixel limit from its header, never decoded), (c) refusing a 20 MB JPEG
(the byte limit), (d) making every variant of a 20 MB 25-megapixel JPEG with the byte limit raised to let it in.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")

import django  # noqa: E402

# ruff: noqa: T201 - a benchmark prints its figures

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from PIL import Image  # noqa: E402

from apps.library.artwork.storage import FORMATS, ORIGINAL, SIZES, ArtworkStorage, variant_name  # noqa: E402
from apps.library.artwork.variants import JPEG_QUALITY, WEBP_QUALITY  # noqa: E402
from apps.library.models import Artwork, ArtworkStatus  # noqa: E402
from apps.library.services.artwork import artwork_variants_build, artworks_upsert  # noqa: E402

COVERS = int(os.environ.get("BENCH_COVERS", "12"))
ROUNDS = 3


def make_covers(count: int) -> list[bytes]:
    covers = []
    for index in range(count):
        base = Image.linear_gradient("L").resize((1400, 1400)).convert("RGB")
        noise = Image.effect_noise((1400, 1400), 40 + index).convert("RGB")
        image = Image.blend(base, noise, 0.35)
        image = Image.merge(
            "RGB",
            [image.getchannel(i).point(lambda v, shift=60 * i + 7 * index: (v + shift) % 256) for i in range(3)],
        )
        out = io.BytesIO()
        if index % 8 == 7:
            image.convert("CMYK").save(out, "JPEG", quality=90)
        elif index % 6 == 5:
            image.save(out, "PNG")
        else:
            image.save(out, "JPEG", quality=90)
        covers.append(out.getvalue())
    return covers


def bare_pillow(originals: list[Path], out: Path) -> float:
    """The ceiling: decode, resize down the sizes, encode both formats. Nothing else."""
    started = time.perf_counter()
    for original in originals:
        with Image.open(original) as opened:
            image = opened.convert("RGB")
        for size in (ORIGINAL, *reversed(SIZES)):
            if size != ORIGINAL:
                image = image.copy()
                image.thumbnail((size, size), Image.Resampling.LANCZOS)
            for fmt in FORMATS:
                target = out / f"{original.name}-{variant_name(size, fmt)}"
                if fmt == "jpeg":
                    image.save(target, "JPEG", quality=JPEG_QUALITY, progressive=True)
                else:
                    image.save(target, "WEBP", quality=WEBP_QUALITY, method=4)
    return time.perf_counter() - started


def task(artwork_ids: list[int]) -> float:
    storage = ArtworkStorage.from_settings()
    for artwork in Artwork.objects.filter(pk__in=artwork_ids):
        shutil.rmtree(storage.folder(artwork.hash), ignore_errors=True)
    Artwork.objects.filter(pk__in=artwork_ids).update(status=ArtworkStatus.PENDING)
    started = time.perf_counter()
    for artwork_id in artwork_ids:
        assert artwork_variants_build(artwork_id=artwork_id) == ArtworkStatus.READY
    return time.perf_counter() - started


_RSS_SCRIPT = r"""
import os, sys
sys.path.insert(0, {base!r})
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revenge.settings")
import django
django.setup()
from pathlib import Path
from apps.library.artwork.images import BadImage
from apps.library.artwork.storage import ArtworkStorage
from apps.library.artwork.variants import variants_write
what, path, root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
data = path.read_bytes() if what != "idle" else b""
outcome = "-"
if what in ("bomb", "big-refused"):
    try:
        ArtworkStorage(root).store(data, max_bytes=10 * 1024 * 1024, max_pixels=25_000_000)
        outcome = "stored"
    except BadImage as exc:
        outcome = f"refused: {{exc}}"
elif what == "big-made":
    stored = ArtworkStorage(root).store(data, max_bytes=64 * 1024 * 1024, max_pixels=25_000_000)
    del data
    folder = root / "made"
    folder.mkdir()
    variants_write(ArtworkStorage(root).original(stored.hash), folder)
    outcome = f"{{len(list(folder.iterdir()))}} variants made"
# VmHWM: this process's own peak (ru_maxrss can carry the forking parent's over the exec).
peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(peak_kib // 1024, outcome)
"""


def peak_rss(what: str, path: Path, root: Path) -> tuple[int, str]:
    script = _RSS_SCRIPT.format(base=str(BASE_DIR))
    out = (
        subprocess.run(
            [sys.executable, "-c", script, what, str(path), str(root)], capture_output=True, text=True, check=True
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    mib, outcome = out.split(" ", 1)
    return int(mib), outcome


def main() -> int:
    from tests.artwork import bomb_png

    work = Path(tempfile.mkdtemp(prefix="bench-art-"))
    test_database = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    settings.ARTWORK_ROOT = work / "artwork"
    try:
        covers = make_covers(COVERS)
        storage = ArtworkStorage.from_settings()
        stored = [storage.store(data, max_bytes=64 * 1024 * 1024, max_pixels=25_000_000) for data in covers]
        ids = list(artworks_upsert(images=stored, source="upload").values())
        originals = [storage.original(image.hash) for image in stored]
        bare_out = work / "bare"
        bare_out.mkdir()
        bare_pillow(originals[:2], bare_out), task(ids[:2])  # warm-up: imports, codecs, the first queries
        a_times, b_times = [], []
        for round_index in range(ROUNDS):
            runs = [("a", lambda: bare_pillow(originals, bare_out)), ("b", lambda: task(ids))]
            for name, run in runs if round_index % 2 == 0 else reversed(runs):
                (a_times if name == "a" else b_times).append(run())
        a, b = min(a_times), min(b_times)

        hostile = work / "hostile"
        hostile.mkdir()
        (hostile / "bomb.png").write_bytes(bomb_png())
        big = io.BytesIO()
        Image.effect_noise((5000, 5000), 90).convert("RGB").save(big, "JPEG", quality=92)
        (hostile / "big.jpg").write_bytes(big.getvalue())
        rss = {
            what: peak_rss(what, hostile / name, work / f"rss-{what}")
            for what, name in (
                ("idle", "bomb.png"),
                ("bomb", "bomb.png"),
                ("big-refused", "big.jpg"),
                ("big-made", "big.jpg"),
            )  # fmt: skip
        }
        bomb_kb, big_mb = len(bomb_png()) // 1024, len(big.getvalue()) / 1e6
    finally:
        connection.creation.destroy_test_db(test_database, verbosity=0)
        shutil.rmtree(work, ignore_errors=True)

    sizes = "/".join(str(s) for s in SIZES)
    print(f"artwork benchmark: {COVERS} covers of 1400x1400 (JPEG, PNG, CMYK JPEG), each into {sizes} + original "
          f"in WebP and JPEG (10 files); best of {ROUNDS} interleaved runs")  # fmt: skip
    print(f"  (a) bare Pillow loop (ceiling)   {a:6.2f} s  {COVERS / a:6.1f} covers/s")
    print(f"  (b) the artwork task, end to end {b:6.2f} s  {COVERS / b:6.1f} covers/s")
    print(f"  b/a = {a / b:.2f} (target >= 0.8)")
    print("peak RSS of a fresh worker process (Django set up):")
    print(f"  idle                                         {rss['idle'][0]:5d} MiB")
    print(f"  the bomb, a {bomb_kb} kB PNG of 30000x30000      {rss['bomb'][0]:5d} MiB  {rss['bomb'][1]}")
    print(
        f"  a {big_mb:.1f} MB 5000x5000 JPEG, default limits  {rss['big-refused'][0]:5d} MiB  {rss['big-refused'][1]}"
    )
    print(f"  the same JPEG let in, all variants made      {rss['big-made'][0]:5d} MiB  {rss['big-made'][1]}")
    print(f"  (the image decoded is 5000x5000x3 = {5000 * 5000 * 3 / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
