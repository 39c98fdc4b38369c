"""One reduced decode, two renditions that fit their boxes, formats kept."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from functions import reasons
from functions.image_checks import JPEG, PNG, ImageRejected
from functions.renditions import ImageUndecodable, render
from tests.conftest import CAMERA_TRAPS, jpeg_bytes


def size_of(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize("path", sorted((CAMERA_TRAPS / "BUOW").glob("*.JPG"))[:5],
                         ids=lambda p: p.name)
def test_camera_trap_renditions_fit_their_boxes(path: Path) -> None:
    rendered = render(path.read_bytes(), JPEG, max_pixels=10**8)
    medium, small = size_of(rendered.medium), size_of(rendered.small)
    assert max(medium) == 940 and max(small) == 120
    assert Image.open(io.BytesIO(rendered.medium)).format == "JPEG"
    assert (rendered.width, rendered.height) == Image.open(path).size


def test_png_stays_png_with_its_alpha() -> None:
    buffer = io.BytesIO()
    Image.new("RGBA", (2000, 1000), (10, 20, 30, 128)).save(buffer, format="PNG")
    rendered = render(buffer.getvalue(), PNG, max_pixels=10**8)
    medium = Image.open(io.BytesIO(rendered.medium))
    assert (medium.format, medium.mode, medium.size) == ("PNG", "RGBA", (940, 470))


def test_too_many_pixels_is_rejected_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected) as rejected:
        render(jpeg_bytes(tmp_path, size=(1000, 1000)), JPEG, max_pixels=999_999)
    assert rejected.value.reason == reasons.TOO_MANY_PIXELS


def test_an_undecodable_jpeg_is_reported_as_corrupted() -> None:
    with pytest.raises(ImageUndecodable, match="corrupted image file"):
        render(b"\xff\xd8\xff\xe0" + b"\x00" * 100, JPEG, max_pixels=10**8)
