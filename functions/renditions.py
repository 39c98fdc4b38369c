"""Decoding an image once, at reduced scale, into the serving renditions."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from functions import reasons
from functions.image_checks import ImageRejected, ImageType

MEDIUM_SIZE = (940, 940)
SMALL_SIZE = (120, 120)


@dataclass(frozen=True)
class Rendered:
    width: int  # of the full image, as stored in the file
    height: int
    medium: bytes
    small: bytes


class ImageUndecodable(Exception):
    """Pillow could not decode the image; the message goes to the API as an `md.errors` entry."""


def render(data: bytes, image_type: ImageType, max_pixels: int) -> Rendered:
    """Both renditions from one decode; JPEG stays JPEG and PNG stays PNG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise ImageRejected(
                    reasons.TOO_MANY_PIXELS, f"{width}x{height} is over {max_pixels} pixels"
                )
            if image.format == "JPEG":
                # Decode at 1/2..1/8 scale when that still covers the medium size: cheap.
                image.draft("RGB", MEDIUM_SIZE)
            image.load()
            oriented = ImageOps.exif_transpose(image)
            medium = _fit(oriented, MEDIUM_SIZE, image_type)
            small = _fit(medium, SMALL_SIZE, image_type)
            return Rendered(width, height, _encode(medium, image_type), _encode(small, image_type))
    except ImageRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            EOFError) as exc:
        raise ImageUndecodable(f"corrupted image file: {exc}") from None


def _fit(image: Image.Image, box: tuple[int, int], image_type: ImageType) -> Image.Image:
    copy = _normalise_mode(image, image_type)
    if copy is image:
        copy = image.copy()
    copy.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return copy


def _normalise_mode(image: Image.Image, image_type: ImageType) -> Image.Image:
    if image_type.extension == "png":
        if image.mode in ("RGB", "RGBA", "L", "LA"):
            return image
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if image.mode in ("RGB", "L"):
        return image
    if image.mode == "CMYK":
        return image.convert("RGB")
    if image.mode.startswith("I;16") or image.mode == "I":
        return image.point(lambda v: v / 256).convert("L")
    if "A" in image.getbands():
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
        return background
    return image.convert("RGB")


def _encode(image: Image.Image, image_type: ImageType) -> bytes:
    out = io.BytesIO()
    if image_type.extension == "png":
        image.save(out, format="PNG", optimize=False)
    else:
        image.save(out, format="JPEG", quality=85)
    return out.getvalue()
