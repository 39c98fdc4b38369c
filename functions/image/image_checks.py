"""What a file really is, judged by its content rather than its name."""

from __future__ import annotations

from dataclasses import dataclass

from functions.platform import reasons
from functions.platform.reasons import Rejected


@dataclass(frozen=True)
class ImageType:
    extension: str  # what we store it as: "jpg" or "png"
    mime_type: str


JPEG = ImageType("jpg", "image/jpeg")
PNG = ImageType("png", "image/png")


def sniff_image_type(data: bytes, max_bytes: int) -> ImageType:
    """The image type of `data`, or Rejected with a reason for anything we do not ingest."""
    if not data:
        raise Rejected(reasons.EMPTY_FILE, "the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise Rejected(reasons.IMAGE_TOO_LARGE, f"{len(data)} bytes is over the limit")
    if data[:3] == b"\xff\xd8\xff":
        return JPEG
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return PNG
    if data[4:8] == b"ftyp" or data[:4] == b"\x1aE\xdf\xa3":  # ISO-BMFF (mp4/mov), Matroska
        raise Rejected(reasons.VIDEO_FILE, "the file is a video")
    if data[:4] == b"RIFF":
        kind = data[8:12].decode("latin-1")
        reason = {"AVI ": reasons.VIDEO_FILE, "WEBP": reasons.UNSUPPORTED_IMAGE_TYPE}.get(
            kind, reasons.NOT_AN_IMAGE)
        raise Rejected(reason, f"the file is a RIFF {kind.strip()!r} container")
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        raise Rejected(reasons.UNSUPPORTED_IMAGE_TYPE, "the file is a TIFF image")
    raise Rejected(reasons.NOT_AN_IMAGE, "the content is not a JPEG or PNG image")
