"""Object keys: unique per source, and never over S3's key limit."""

from __future__ import annotations

import pytest

from functions.platform import aws_limits, storage

LIMIT = aws_limits.S3_KEY.max_bytes


def test_a_key_that_fits_is_kept_as_it_is() -> None:
    key = storage.rejected_key("NOT_AN_IMAGE", storage.entry_origin("batch-1", 30), "a/x.jpg")
    assert key == "NOT_AN_IMAGE/batch-1/30/a/x.jpg"


@pytest.mark.parametrize("segment", ["a" * 300, "ü" * 300, "😀" * 100, "a" * 1 + "é" * 700])
def test_long_names_are_shortened_to_the_limit_deterministically(segment: str) -> None:
    name = f"{segment}/{segment}/IMG_0001.JPG"
    key = storage.rejected_key("NOT_AN_IMAGE", storage.entry_origin("batch-1", 30), name)
    assert len(key.encode()) <= LIMIT
    assert key.endswith("/IMG_0001.JPG") and key.startswith("NOT_AN_IMAGE/batch-1/30/")
    assert key == storage.rejected_key("NOT_AN_IMAGE", storage.entry_origin("batch-1", 30), name)
    key.encode().decode()  # cut at a character boundary


def test_long_names_with_one_tail_stay_apart() -> None:
    tail = "b" * 1100
    first = storage.fit_key("R/o", "x" + tail)
    second = storage.fit_key("R/o", "y" + tail)
    assert first != second and len(first.encode()) == len(second.encode()) == LIMIT


def test_a_long_api_message_as_a_folder_leaves_room_for_the_name() -> None:
    key = storage.dead_letter_key("boom " * 400, None, "single/abc", "IMG_0001.JPG")
    reason = key.split("/")[0]
    assert len(reason.encode()) <= storage.MAX_REASON_BYTES
    assert key.endswith("/UNKNOWN_ID/single/abc/IMG_0001.JPG")
