"""The content decides what a file is, not its name."""

from __future__ import annotations

import pytest

from functions.image.image_checks import JPEG, PNG, sniff_image_type
from functions.platform import reasons
from functions.platform.reasons import Rejected
from tests.conftest import CAMERA_TRAPS


def test_jpeg_and_png_are_recognised() -> None:
    assert sniff_image_type(b"\xff\xd8\xff\xe0rest", 10**6) == JPEG
    assert sniff_image_type(b"\x89PNG\r\n\x1a\nrest", 10**6) == PNG


@pytest.mark.parametrize("data, reason", [
    (b"", reasons.EMPTY_FILE),
    (b"\x00\x00\x00\x18ftypmp42", reasons.VIDEO_FILE),
    (b"\x1aE\xdf\xa3matroska", reasons.VIDEO_FILE),
    (b"RIFF\x00\x00\x00\x00AVI LIST", reasons.VIDEO_FILE),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", reasons.UNSUPPORTED_IMAGE_TYPE),
    (b"II*\x00\x08\x00\x00\x00", reasons.UNSUPPORTED_IMAGE_TYPE),
    (b"hello world", reasons.NOT_AN_IMAGE),
])
def test_other_content_is_rejected_with_its_reason(data: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as rejected:
        sniff_image_type(data, 10**6)
    assert rejected.value.reason == reason


def test_too_many_bytes_is_rejected_before_decoding() -> None:
    with pytest.raises(Rejected) as rejected:
        sniff_image_type(b"\xff\xd8\xff" + b"\0" * 100, 50)
    assert rejected.value.reason == reasons.IMAGE_TOO_LARGE


def test_the_fixture_zero_byte_files_are_empty() -> None:
    for name in ("error_img.JPG", "error_vid.mp4"):
        with pytest.raises(Rejected) as rejected:
            sniff_image_type((CAMERA_TRAPS / "Southwest" / name).read_bytes(), 10**8)
        assert rejected.value.reason == reasons.EMPTY_FILE
