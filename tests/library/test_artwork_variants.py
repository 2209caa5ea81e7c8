"""The artwork task: every size in WebP and progressive JPEG, upright, sRGB 8-bit whatever came in, the
dominant colour kept, published by one rename; sent on the `artwork` queue after a scan."""

from __future__ import annotations

import io
import json

import pytest
from celery import current_app
from PIL import Image, ImageCms

from apps.library.artwork.storage import ArtworkStorage, variant_names
from apps.library.models import Artwork, ArtworkStatus
from apps.library.services import artwork as artwork_services
from apps.library.services.artwork import artwork_variants_build
from apps.library.tasks import artwork_variants_task
from tests.artwork import embed, image_bytes
from tests.audio import make_audio
from tests.factories import LibraryFactory
from tests.pipeline import scan_job

pytestmark = pytest.mark.django_db


def stored(data: bytes) -> Artwork:
    rules = artwork_services.picture_rules()
    image = ArtworkStorage.from_settings().store(data, max_bytes=rules.max_bytes, max_pixels=rules.max_pixels)
    artwork_id = artwork_services.artworks_upsert(images=[image], source="upload")[image.hash]
    return Artwork.objects.get(pk=artwork_id)


def variant(artwork: Artwork, name: str) -> Image.Image:
    image = Image.open(ArtworkStorage.from_settings().file(artwork.hash, name))
    image.load()
    return image


def test_every_size_and_format_fitted_in_its_square_never_enlarged():
    image = Image.new("RGB", (900, 600), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, 900, 100))  # a blue band: 1/6 of the picture
    out = io.BytesIO()
    image.save(out, "PNG")
    artwork = stored(out.getvalue())

    assert artwork_variants_task([artwork.pk]) == {"ready": 1}

    artwork.refresh_from_db()
    assert (artwork.status, artwork.color) == (ArtworkStatus.READY, "#c81e1e")
    storage = ArtworkStorage.from_settings()
    assert sorted(p.name for p in storage.folder(artwork.hash).iterdir()) == sorted(variant_names())
    assert not list(storage.tmp_root.iterdir())
    sizes = {name: variant(artwork, name).size for name in variant_names()}
    assert sizes == {
        "64.webp": (64, 42), "64.jpg": (64, 42), "128.webp": (128, 85), "128.jpg": (128, 85),
        "300.webp": (300, 200), "300.jpg": (300, 200), "600.webp": (600, 400), "600.jpg": (600, 400),
        "original.webp": (900, 600), "original.jpg": (900, 600),
    }  # fmt: skip
    assert variant(artwork, "300.jpg").info.get("progressive") == 1
    assert variant(artwork, "300.webp").format == "WEBP"
    assert variant(artwork, "600.jpg").getpixel((450 * 600 // 900, 300)) == pytest.approx((200, 30, 30), abs=4)

    small = stored(image_bytes((10, 120, 10), size=(100, 100)))
    artwork_variants_build(artwork_id=small.pk)
    assert variant(small, "300.jpg").size == (100, 100)
    assert artwork_variants_build(artwork_id=small.pk) == ArtworkStatus.READY  # again: nothing to do


def test_exif_orientation_cmyk_16_bit_palette_alpha_and_icc_inputs_come_out_8_bit_srgb_upright():
    tall = Image.new("RGB", (200, 100), (200, 30, 30))
    tall.paste((30, 30, 200), (0, 0, 100, 100))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = io.BytesIO()
    tall.save(out, "JPEG", exif=exif.tobytes(), quality=95)
    rotated = stored(out.getvalue())
    artwork_variants_build(artwork_id=rotated.pk)
    upright = variant(rotated, "original.jpg")
    assert upright.size == (100, 200)
    assert upright.getpixel((50, 20)) == pytest.approx((30, 30, 200), abs=8)  # the blue half is on top now

    cmyk = stored(image_bytes((200, 30, 30), cmyk=True))
    sixteen = io.BytesIO()
    Image.new("I;16", (50, 50), 40000).save(sixteen, "PNG")
    grey16 = stored(sixteen.getvalue())
    alpha = io.BytesIO()
    Image.new("RGBA", (50, 50), (0, 0, 200, 0)).save(alpha, "PNG")
    transparent = stored(alpha.getvalue())
    icc = io.BytesIO()
    Image.new("RGB", (50, 50), (30, 200, 30)).save(
        icc, "JPEG", icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    )
    with_profile = stored(icc.getvalue())
    for artwork in (cmyk, grey16, transparent, with_profile):
        assert artwork_variants_build(artwork_id=artwork.pk) == ArtworkStatus.READY
    assert variant(cmyk, "64.jpg").mode == "RGB"
    assert variant(cmyk, "64.jpg").getpixel((10, 10)) == pytest.approx((200, 30, 30), abs=12)
    assert variant(grey16, "64.jpg").getpixel((10, 10)) == pytest.approx((156, 156, 156), abs=3)  # 40000/256
    assert variant(transparent, "64.jpg").getpixel((10, 10)) == pytest.approx((255, 255, 255), abs=3)
    assert variant(with_profile, "64.jpg").getpixel((10, 10)) == pytest.approx((30, 200, 30), abs=6)
    assert "icc_profile" not in variant(with_profile, "64.jpg").info


def test_an_undecodable_original_fails_the_row_with_the_reason():
    artwork = stored(image_bytes((1, 2, 3)))
    ArtworkStorage.from_settings().original(artwork.hash).write_bytes(b"gone bad on disk")
    assert artwork_variants_build(artwork_id=artwork.pk) == ArtworkStatus.FAILED
    artwork.refresh_from_db()
    assert artwork.status == ArtworkStatus.FAILED
    assert artwork.error.startswith("UnidentifiedImageError: cannot identify image file")
    assert not ArtworkStorage.from_settings().is_published(artwork.hash)


def test_a_scan_sends_the_new_covers_to_the_artwork_queue(media, django_capture_on_commit_callbacks):
    for index in (1, 2):
        path = make_audio(media / "A" / f"{index}.mp3", seconds=1.0, tags={"album": "A", "title": str(index)})
        embed(path, image_bytes((200, 30, 30)))
    library = LibraryFactory(root=media)
    with django_capture_on_commit_callbacks(execute=True):
        scan_job(library)
    with current_app.connection_for_write() as conn:
        raw = conn.default_channel.client.lrange(artwork_services.VARIANTS_QUEUE, 0, -1)
    messages = [json.loads(item) for item in raw]
    assert [m["headers"]["task"] for m in messages] == ["apps.library.tasks.artwork_variants_task"]
    assert messages[0]["headers"]["kwargsrepr"] == repr({"artwork_ids": [Artwork.objects.get().pk]})


def test_the_original_variant_is_capped_and_a_large_jpeg_decoded_at_a_reduced_scale():
    wide = stored(image_bytes((10, 120, 200), size=(4200, 2100)))
    assert artwork_variants_build(artwork_id=wide.pk) == ArtworkStatus.READY
    assert variant(wide, "original.jpg").size == (2048, 1024)
    assert variant(wide, "600.webp").size == (600, 300)
