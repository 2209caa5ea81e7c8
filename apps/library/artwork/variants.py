"""The pre-sized variants of one stored original, made with Pillow (no ORM).

Pillow rather than pyvips: Pillow is a wheel with libjpeg-turbo, libwebp and littlecms inside (pyvips needs
the system's libvips), and covers are small: bench/art.py measures the whole task against a bare Pillow
resize loop over the same covers. The image is decoded once; EXIF orientation applied; an embedded ICC
profile converted to sRGB; CMYK, 16-bit, palette and alpha inputs brought to 8-bit RGB; each size fitted
inside its square (never enlarged) from the decoded original; JPEG progressive, WebP at the same quality.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageCms, ImageOps

from apps.library.artwork.storage import FORMATS, ORIGINAL, SIZES, variant_name

JPEG_QUALITY = 85
WEBP_QUALITY = 80
# The "original" variant is the source at its own size up to this many pixels a side (a larger one is fitted):
# a WebP encode needs ~20 bytes per pixel, so a 25-megapixel scan would take a worker to ~600 MiB for a size no
# screen shows (bench/art.py measures it). A JPEG source that large is decoded at a reduced scale to begin with.
ORIGINAL_MAX_PX = 2048
_SRGB = ImageCms.createProfile("sRGB")


def _to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if image.mode not in ("RGB", "CMYK", "L"):
            image = image.convert("RGB")
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return image  # a broken profile: the pixels as they are
    return converted or image


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        # 16-bit grey: scaled to 8 bits (Pillow's convert("L") would clip everything above 255 to white).
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    if image.mode == "RGB;16" or image.mode not in ("RGB",):
        return image.convert("RGB")
    return image


def decode(original: Path) -> Image.Image:
    """The original as 8-bit sRGB RGB, upright."""
    with Image.open(original) as opened:
        if opened.format == "JPEG":
            opened.draft(opened.mode, (ORIGINAL_MAX_PX, ORIGINAL_MAX_PX))  # libjpeg's 1/2, 1/4, 1/8 scales
        opened.load()
        image: Image.Image = ImageOps.exif_transpose(opened) or opened
        icc = opened.info.get("icc_profile")
        if icc:
            image.info["icc_profile"] = icc
        image = _to_srgb(image)
        return _to_rgb(image)


def dominant_color(image: Image.Image) -> str:
    """The most common of a few colours of a small copy, as #rrggbb."""
    small = image.copy()
    small.thumbnail((64, 64), Image.Resampling.BILINEAR)
    quantized = small.quantize(colors=6, method=Image.Quantize.MEDIANCUT)
    palette: list[int] = list(quantized.getpalette() or [])
    colors: list[tuple[int, int]] = [(int(count), int(str(index))) for count, index in quantized.getcolors() or []]
    _count, index = max(colors or [(1, 0)])
    red, green, blue = (palette[index * 3 : index * 3 + 3] + [0, 0, 0])[:3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "jpeg":
        image.save(out, "JPEG", quality=JPEG_QUALITY, progressive=True, optimize=False)
    else:
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()


def sized(image: Image.Image, size: int) -> Image.Image:
    """Fitted inside size x size, never enlarged. Lanczos after an integer box reduction down to twice the target
    (reducing_gap, as Image.thumbnail does): the same result to the eye, a fraction of the work from a large
    original (bench/art.py: 3.7x slower without it)."""
    if image.width <= size and image.height <= size:
        return image
    scale = size / max(image.width, image.height)
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)


def variants_write(original: Path, folder: Path) -> str:
    """Every size in every format into `folder` (which must exist); returns the dominant colour."""
    image = sized(decode(original), ORIGINAL_MAX_PX)
    color = dominant_color(image)
    for size in (ORIGINAL, *reversed(SIZES)):
        # Each size from the one above it (600 from the original, 300 from 600...): the same sharpness for
        # covers, a fraction of the resampling work of starting from the original every time.
        if size != ORIGINAL:
            assert isinstance(size, int)
            image = sized(image, size)
        for fmt in FORMATS:
            (folder / variant_name(size, fmt)).write_bytes(encode(image, fmt))
    return color
