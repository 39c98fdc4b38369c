"""Reading archives in S3 by range GETs: listing, entry reads, and bad archives."""

from __future__ import annotations

import zipfile

import pytest

from functions import reasons
from functions.archive import (
    BadArchive,
    EntryUnreadable,
    S3RangeReader,
    inspect_archive,
    read_entry,
    safe_entry_path,
)
from tests.conftest import zip_bytes

BUCKET = "animl-images-ingestion-test"


def put(s3, data: bytes, key: str = "a.zip") -> S3RangeReader:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return S3RangeReader(s3, BUCKET, key)


def test_listing_keeps_images_and_videos_and_says_why_others_are_skipped(s3) -> None:
    listing = inspect_archive(put(s3, zip_bytes({
        "cam/IMG_1.JPG": b"1", "cam/IMG_2.jpeg": b"2", "cam/x.png": b"3", "cam/clip.MP4": b"4",
        "cam/": b"", "__MACOSX/cam/._IMG_1.JPG": b"m", "cam/.DS_Store": b"d", "cam/notes.txt": b"t",
    })))
    assert [e.path for e in listing.images] == ["cam/IMG_1.JPG", "cam/IMG_2.jpeg", "cam/x.png",
                                                "cam/clip.MP4"]
    assert {s["path"]: s["reason"] for s in listing.skipped} == {
        "cam/": reasons.SKIPPED_DIRECTORY,
        "__MACOSX/cam/._IMG_1.JPG": reasons.SKIPPED_HIDDEN,
        "cam/.DS_Store": reasons.SKIPPED_HIDDEN,
        "cam/notes.txt": reasons.SKIPPED_UNSUPPORTED_TYPE,
    }


def test_the_listing_reads_only_a_few_ranges_not_the_whole_archive(s3) -> None:
    members = {f"img_{i}.jpg": bytes([i % 251]) * 200_000 for i in range(40)}
    reader = put(s3, zip_bytes(members, zipfile.ZIP_STORED))
    listing = inspect_archive(reader)
    assert len(listing.images) == 40
    assert reader.requests <= 3


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_an_entry_is_read_by_offset_and_crc_checked(s3, method: int) -> None:
    payload = b"camera trap " * 5000
    reader = put(s3, zip_bytes({"a.jpg": payload, "b.jpg": b"other"}, method))
    entries = inspect_archive(reader).images
    assert read_entry(reader, entries[0], max_bytes=10**7) == payload
    assert read_entry(reader, entries[1], max_bytes=10**7) == b"other"


def test_a_crc_mismatch_is_a_corrupted_image(s3) -> None:
    data = bytearray(zip_bytes({"a.jpg": b"A" * 100}, zipfile.ZIP_STORED))
    data[data.index(b"A" * 100) + 50] = ord("B")  # flip one byte of the stored data
    reader = put(s3, bytes(data))
    entry = inspect_archive(reader).images[0]
    with pytest.raises(EntryUnreadable) as unreadable:
        read_entry(reader, entry, max_bytes=10**6)
    assert unreadable.value.reason == reasons.CORRUPTED_IMAGE_FILE


def test_an_entry_over_the_size_limit_is_refused(s3) -> None:
    reader = put(s3, zip_bytes({"big.jpg": b"\0" * 100_000}))
    entry = inspect_archive(reader).images[0]
    with pytest.raises(EntryUnreadable) as unreadable:
        read_entry(reader, entry, max_bytes=10_000)
    assert unreadable.value.reason == reasons.IMAGE_TOO_LARGE


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"plain text, not a zip", "not a zip"),
    (zip_bytes({"a.jpg": b"x" * 1000})[:-30], "Bad archive"),  # truncated end record
])
def test_bad_archives_raise_with_a_clear_message(s3, data: bytes, message: str) -> None:
    with pytest.raises(BadArchive) as bad:
        inspect_archive(put(s3, data))
    assert str(bad.value).startswith("Bad archive:")
    assert message in str(bad.value)


@pytest.mark.parametrize("name, safe", [
    ("a/b.jpg", "a/b.jpg"),
    ("../../etc/passwd.jpg", "etc/passwd.jpg"),
    ("/abs/x.jpg", "abs/x.jpg"),
    ("C:\\cards\\x.jpg", "cards/x.jpg"),
    ("a/./b/../c.jpg", "a/b/c.jpg"),
])
def test_entry_names_cannot_leave_the_batch_prefix(name: str, safe: str) -> None:
    assert safe_entry_path(name) == safe
