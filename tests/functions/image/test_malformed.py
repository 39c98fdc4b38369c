"""Files that are not what their name claims: each ends with a reason, never a crash or a hang."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from functions.image.image_checks import JPEG
from functions.image.ingest_image import ImageSource, prepare_image
from functions.image.renditions import TRUNCATED_WARNING, ImageUndecodable, render
from functions.platform import reasons
from functions.platform.reasons import Rejected
from functions.platform.settings import Settings
from tests.conftest import CAMERA_TRAPS, MALFORMED

SETTINGS = Settings(stage="test")
OWN_REASONS = {reasons.VIDEO_FILE, reasons.UNSUPPORTED_IMAGE_TYPE, reasons.NOT_AN_IMAGE,
               reasons.EMPTY_FILE, reasons.TOO_MANY_PIXELS, reasons.IMAGE_TOO_LARGE}


@contextmanager
def no_longer_than(seconds: int) -> Iterator[None]:
    """A hang guard (not a speed target): fail instead of blocking the suite."""
    def expire(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_malformed_fixtures_are_there() -> None:
    # The fixture README says 155; the folder holds 154 (146 crash-*, 8 exifsamples-*).
    assert len(list(MALFORMED.iterdir())) >= 150


@pytest.mark.parametrize("path", sorted(MALFORMED.iterdir()), ids=lambda p: p.name)
def test_each_malformed_file_gets_a_reason_or_is_a_real_image(path: Path) -> None:
    source = ImageSource(file_name=path.name, bucket="b", key=path.name)
    with no_longer_than(30):
        try:
            prepared = prepare_image(path.read_bytes(), source, SETTINGS)
        except Rejected as rejected:
            assert rejected.reason in OWN_REASONS
            return
    # What passes our checks is decodable and sent to the API.
    assert prepared.rendered.width > 0 and prepared.md["errors"] == []


def test_a_truncated_jpeg_that_decodes_is_kept_with_a_warning() -> None:
    data = (CAMERA_TRAPS / "BUOW/IMG_0708.JPG").read_bytes()
    rendered = render(data[: len(data) * 6 // 10], JPEG, SETTINGS.max_image_pixels)
    assert rendered.warnings == (TRUNCATED_WARNING,)
    assert (rendered.width, rendered.height) == (2048, 1536)


def test_a_jpeg_cut_before_its_image_data_is_corrupted() -> None:
    data = (CAMERA_TRAPS / "BUOW/IMG_0708.JPG").read_bytes()
    start_of_scan = data.find(b"\xff\xda")
    with pytest.raises(ImageUndecodable, match="corrupted image file"):
        render(data[: start_of_scan + 20], JPEG, SETTINGS.max_image_pixels)
