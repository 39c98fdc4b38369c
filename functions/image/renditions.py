"""Decoding an image once, at reduced scale, into the serving renditions."""

from __future__ import annotations

import io
import math
import os
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import BinaryIO

from cykooz_resizer import FilterType, ResizeAlg, ResizeOptions, Resizer
from PIL import Image, ImageFile, ImageOps, JpegImagePlugin, UnidentifiedImageError

from functions.image.image_checks import ImageType
from functions.platform import reasons
from functions.platform.budget import ByteBudget
from functions.platform.reasons import Rejected

MEDIUM_SIZE = (940, 940)
SMALL_SIZE = (120, 120)
# A camera that lost power mid-write leaves a truncated JPEG; what decodes is worth keeping
# (the rest renders grey) and the outcome says so. Pillow only offers this switch globally.
ImageFile.LOAD_TRUNCATED_IMAGES = True
MIN_SCAN_BYTES = 256  # less entropy-coded data than this after SOS: nothing to see
TRUNCATED_WARNING = "truncated JPEG: only the part before the cut is rendered"
# Pillow allocates an image in blocks of up to 16 MB, which glibc serves from the decoding
# thread's own arena and keeps once freed: a group's threads decoding 100-megapixel PNGs one at
# a time grew the worker to 1.7 GB. Blocks over glibc's largest mmap threshold (32 MB) are mapped
# and unmapped, so a freed image's memory goes back at once (small images take one block of
# their own size either way).
IMAGE_BLOCK_BYTES = 64 * 1024 * 1024
Image.core.set_block_size(IMAGE_BLOCK_BYTES)
# What a decode holds of a ByteBudget: Pillow keeps 8-bit pixels in 4 bytes (1 for L and P), and
# a mode conversion (`_normalise_mode`) makes one more copy.
DECODE_BYTES_PER_PIXEL = 4 * 2


@dataclass(frozen=True)
class Rendered:
    width: int  # of the full image, as stored in the file
    height: int
    medium: bytes
    small: bytes
    warnings: tuple[str, ...] = ()


class ImageUndecodable(Exception):
    """Pillow could not decode the image; the message goes to the API as an `md.errors` entry."""


def render(data: bytes, image_type: ImageType, max_pixels: int,
           budget: ByteBudget | None = None) -> Rendered:
    """Both renditions from one decode; JPEG stays JPEG and PNG stays PNG. With a `budget`
    (shared by the threads of a group), the decode waits until its pixels fit in it: a photo
    decodes small (drafted to the medium's scale), but a 100-megapixel PNG decodes whole, and
    eight of them at once would be 3.2 GB, over the function's memory."""
    warnings: tuple[str, ...] = ()
    if image_type.extension == "jpg" and is_truncated_jpeg(data):
        if scan_bytes(data) < MIN_SCAN_BYTES:
            raise ImageUndecodable("corrupted image file: truncated before any image data")
        warnings = (TRUNCATED_WARNING,)
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                raise Rejected(
                    reasons.TOO_MANY_PIXELS, f"{width}x{height} is over {max_pixels} pixels"
                )
            if isinstance(image, JpegImagePlugin.JpegImageFile):
                # Decode at 1/2..1/8 scale when that still covers the medium size: cheap. The
                # JPEG family includes MPO (phone-style JPEGs with an embedded preview).
                image.draft(image.mode, _fitted(image.size, MEDIUM_SIZE))
            decoded_bytes = image.size[0] * image.size[1] * DECODE_BYTES_PER_PIXEL  # as drafted
            with budget.held(decoded_bytes) if budget else nullcontext():
                image.load()
                # Turned in place; the medium made from it and encoded, then the small from the
                # medium (photos resized into new images, others by Pillow in place).
                ImageOps.exif_transpose(image, in_place=True)
                medium = _fit(image, MEDIUM_SIZE, image_type)
                medium_bytes = _encode(medium, image_type)
                small = _fit(medium, SMALL_SIZE, image_type)
                small_bytes = _encode(small, image_type)
            return Rendered(width, height, medium_bytes, small_bytes, warnings)
    except Rejected:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, past twice its limit
        raise Rejected(reasons.TOO_MANY_PIXELS, str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageUndecodable(f"corrupted image file: {exc}") from None


def _fitted(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The size `size` takes when fitted inside `box` (what draft() must still cover)."""
    scale = min(box[0] / size[0], box[1] / size[1], 1.0)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def is_truncated_jpeg(data: bytes) -> bool:
    """No end-of-image marker at the end (trailing padding aside)."""
    return not data.rstrip(b"\x00\xff").endswith(b"\xff\xd9")


def scan_bytes(data: bytes) -> int:
    """How many bytes follow the first start-of-scan segment (0 when there is none)."""
    sos = data.find(b"\xff\xda")
    if sos < 0 or sos + 4 > len(data):
        return 0
    header_length = int.from_bytes(data[sos + 2:sos + 4], "big")
    return max(0, len(data) - (sos + 2 + header_length))


# Photos (RGB, or L when grey) are resized with the same Lanczos-3 filter as Pillow's LANCZOS,
# in SIMD: a sixth of Pillow's time, and within a level or two of its pixels. Images with alpha
# keep Pillow's resampling, which weighs colours by their alpha.
_SIMD_MODES = ("RGB", "L")
_LANCZOS3 = ResizeOptions(resize_alg=ResizeAlg.convolution(FilterType.lanczos3))
# A resizer keeps buffers between calls and is not to be shared by threads: one per thread,
# kept for the life of the process (a Lambda container's, across invocations).
_resizers = threading.local()


def _fit(image: Image.Image, box: tuple[int, int], image_type: ImageType) -> Image.Image:
    """`image` fitted inside `box` (as Pillow's thumbnail() sizes it): a new image, or `image`
    itself (converted, if its mode had to change) when it fits already. `image` may be
    resized in place, so it is used up either way."""
    fitted = _normalise_mode(image, image_type)
    size = thumbnail_size(fitted.size, box)
    if size == fitted.size:
        return fitted
    if fitted.mode not in _SIMD_MODES:
        fitted.thumbnail(box, Image.Resampling.LANCZOS, reducing_gap=3.0)
        return fitted
    resized = Image.new(fitted.mode, size)
    _resizer().resize_pil(fitted, resized, _LANCZOS3)
    return resized


def _resizer() -> Resizer:
    if not hasattr(_resizers, "resizer"):
        _resizers.resizer = Resizer()
    resizer: Resizer = _resizers.resizer
    return resizer


def thumbnail_size(size: tuple[int, int], box: tuple[int, int]) -> tuple[int, int]:
    """The size Pillow's thumbnail() gives an image of `size` fitted inside `box`: the aspect
    ratio kept as closely as whole pixels allow, never enlarged, at least 1 pixel."""
    width, height = size
    x, y = box
    if x >= width and y >= height:
        return size
    aspect = width / height

    def closest(number: float, error: Callable[[int], float]) -> int:
        return max(min(math.floor(number), math.ceil(number), key=error), 1)

    if x / y >= aspect:
        return closest(y * aspect, lambda n: abs(aspect - n / y)), y
    return x, closest(x / aspect, lambda n: 0 if n == 0 else abs(aspect - x / n))


def _normalise_mode(image: Image.Image, image_type: ImageType) -> Image.Image:
    """A mode the output format stores with the right colours (8 bits, RGB/L, alpha for PNG)."""
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit samples: scale to 8 bits (a plain convert would clip everything to white).
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    if image_type.extension == "png":
        if image.mode in ("RGB", "RGBA", "L", "LA"):
            return image
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        return image.convert("RGBA" if has_alpha else "RGB")
    if image.mode in ("RGB", "L"):
        return image
    if "A" in image.getbands() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")  # CMYK, YCbCr, P, 1: Pillow knows their colours


def _encode(image: Image.Image, image_type: ImageType) -> bytes:
    if image_type.extension == "png":
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False)  # its chunks are written through Python
        return out.getvalue()
    with _file_in_memory() as file:
        image.save(file, format="JPEG", quality=85)
        file.seek(0)  # Pillow wrote through the descriptor: read it back from the start
        return file.read()


def _file_in_memory() -> BinaryIO:
    """A file in memory that has a descriptor. Pillow encodes into a descriptor with the GIL
    released, but into a BytesIO holding it: a group's threads encoded one JPEG at a time,
    about a fifth of a photo's work, on a 2-vCPU Lambda. Linux's memfd (Lambda's kernel has
    it) touches no disk; elsewhere a BytesIO does as before."""
    if not hasattr(os, "memfd_create"):
        return io.BytesIO()
    return os.fdopen(os.memfd_create("rendition", os.MFD_CLOEXEC), "w+b")
