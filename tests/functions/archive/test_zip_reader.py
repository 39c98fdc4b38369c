"""Reading archives in S3 by range GETs: listing, entry reads, and bad archives."""

from __future__ import annotations

import io
import random
import zipfile
from dataclasses import replace

import pytest

from functions.archive.zip_reader import (
    BadArchive,
    EntryLimits,
    S3RangeReader,
    inspect_archive,
    read_entry,
    safe_entry_path,
)
from functions.platform import reasons
from functions.platform.reasons import Rejected
from tests.conftest import zip_bytes

BUCKET = "animl-images-ingestion-test"
LIMITS = EntryLimits(max_entry_bytes=10**7, max_compression_ratio=100, max_total_bytes=10**9)


def put(s3, data: bytes, key: str = "a.zip") -> S3RangeReader:
    s3.put_object(Bucket=BUCKET, Key=key, Body=data)
    return S3RangeReader(s3, BUCKET, key)


def test_listing_counts_images_keeps_other_files_and_says_why_the_rest_is_skipped(s3) -> None:
    listing = inspect_archive(put(s3, zip_bytes({
        "cam/IMG_1.JPG": b"1", "cam/IMG_2.jpeg": b"2", "cam/x.png": b"3", "cam/clip.MP4": b"4",
        "cam/": b"", "__MACOSX/cam/._IMG_1.JPG": b"m", "cam/.DS_Store": b"d", "cam/notes.txt": b"t",
    })), LIMITS)
    # Only images count in the batch's total, as the web app counts; other files are kept.
    assert [e.path for e in listing.images] == ["cam/IMG_1.JPG", "cam/IMG_2.jpeg", "cam/x.png"]
    assert all(e.counted for e in listing.images)
    assert {e.path: (e.rejected, e.counted) for e in listing.others} == {
        "cam/clip.MP4": (reasons.VIDEO_FILE, False),
        "cam/notes.txt": (reasons.SKIPPED_UNSUPPORTED_TYPE, False),
    }
    assert {s["path"]: s["reason"] for s in listing.skipped} == {
        "cam/": reasons.SKIPPED_DIRECTORY,
        "__MACOSX/cam/._IMG_1.JPG": reasons.SKIPPED_HIDDEN,
        "cam/.DS_Store": reasons.SKIPPED_HIDDEN,
    }


def test_the_listing_reads_only_a_few_ranges_not_the_whole_archive(s3) -> None:
    members = {f"img_{i}.jpg": bytes([i % 251]) * 200_000 for i in range(40)}
    reader = put(s3, zip_bytes(members, zipfile.ZIP_STORED))
    listing = inspect_archive(reader, LIMITS)
    assert len(listing.images) == 40
    assert reader.requests <= 3


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_an_entry_is_read_by_offset_and_crc_checked(s3, method: int) -> None:
    payload = random.Random(1).randbytes(30_000) * 2  # compresses 2:1, not like a bomb
    reader = put(s3, zip_bytes({"a.jpg": payload, "b.jpg": b"other"}, method))
    entries = inspect_archive(reader, LIMITS).images
    assert read_entry(reader, entries[0], max_bytes=10**7) == payload
    assert read_entry(reader, entries[1], max_bytes=10**7) == b"other"


def test_a_crc_mismatch_is_a_corrupted_image(s3) -> None:
    data = bytearray(zip_bytes({"a.jpg": b"A" * 100}, zipfile.ZIP_STORED))
    data[data.index(b"A" * 100) + 50] = ord("B")  # flip one byte of the stored data
    reader = put(s3, bytes(data))
    entry = inspect_archive(reader, LIMITS).images[0]
    with pytest.raises(Rejected) as unreadable:
        read_entry(reader, entry, max_bytes=10**6)
    assert unreadable.value.reason == reasons.CORRUPTED_IMAGE_FILE


def test_an_entry_over_the_size_limit_is_refused(s3) -> None:
    reader = put(s3, zip_bytes({"big.jpg": b"\0" * 100_000}, zipfile.ZIP_STORED))
    entry = inspect_archive(reader, LIMITS).images[0]
    with pytest.raises(Rejected) as unreadable:
        read_entry(reader, entry, max_bytes=10_000)
    assert unreadable.value.reason == reasons.IMAGE_TOO_LARGE


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"plain text, not a zip", "not a zip"),
    (zip_bytes({"a.jpg": b"x" * 1000})[:-30], "Bad archive"),  # truncated end record
])
def test_bad_archives_raise_with_a_clear_message(s3, data: bytes, message: str) -> None:
    with pytest.raises(BadArchive) as bad:
        inspect_archive(put(s3, data), LIMITS)
    assert str(bad.value).startswith("Bad archive:")
    assert message in str(bad.value)


def test_a_corrupt_central_directory_is_a_bad_archive(s3) -> None:
    data = bytearray(zip_bytes({"a.jpg": b"x" * 1000, "b.jpg": b"y" * 1000}))
    directory = data.index(b"PK\x01\x02")
    data[directory:directory + 4] = b"XXXX"  # the first directory entry's signature
    with pytest.raises(BadArchive, match="Bad archive"):
        inspect_archive(put(s3, bytes(data)), LIMITS)


@pytest.mark.parametrize("name, safe", [
    ("a/b.jpg", "a/b.jpg"),
    ("../../etc/passwd.jpg", "etc/passwd.jpg"),
    ("/abs/x.jpg", "abs/x.jpg"),
    ("C:\\cards\\x.jpg", "cards/x.jpg"),
    ("a/./b/../c.jpg", "a/b/c.jpg"),
])
def test_entry_names_cannot_leave_the_batch_prefix(name: str, safe: str) -> None:
    assert safe_entry_path(name) == safe


def test_a_zip_bomb_entry_is_rejected_by_its_ratio_before_inflating(s3) -> None:
    reader = put(s3, zip_bytes({"bomb.jpg": b"\0" * 5_000_000, "ok.jpg": bytes(range(256)) * 40}))
    bomb, ok = inspect_archive(reader, LIMITS).images
    assert bomb.rejected == reasons.COMPRESSION_RATIO_TOO_HIGH and ok.rejected is None
    with pytest.raises(Rejected) as unreadable:
        read_entry(reader, bomb, max_bytes=10**8)
    assert unreadable.value.reason == reasons.COMPRESSION_RATIO_TOO_HIGH


def test_entries_past_the_total_uncompressed_limit_are_rejected(s3) -> None:
    members = {f"{i}.jpg": bytes([i]) * 1000 for i in range(5)}
    limits = EntryLimits(max_entry_bytes=10**6, max_compression_ratio=10**6, max_total_bytes=3000)
    entries = inspect_archive(put(s3, zip_bytes(members, zipfile.ZIP_STORED)), limits).images
    assert [e.rejected for e in entries] == [None, None, None, reasons.BATCH_TOO_LARGE,
                                             reasons.BATCH_TOO_LARGE]


def test_unsupported_methods_and_encryption_get_their_reasons(s3) -> None:
    data = zip_bytes({"a.jpg": b"x" * 100, "b.jpg": b"y" * 100}, zipfile.ZIP_BZIP2)
    reader = put(s3, data)
    entry = inspect_archive(reader, LIMITS).images[0]
    with pytest.raises(Rejected, match="bzip2") as unreadable:
        read_entry(reader, entry, max_bytes=10**6)
    assert unreadable.value.reason == reasons.UNSUPPORTED_COMPRESSION
    encrypted = replace(entry, flags=entry.flags | 0x1, method=zipfile.ZIP_STORED)
    with pytest.raises(Rejected) as unreadable:
        read_entry(reader, encrypted, max_bytes=10**6)
    assert unreadable.value.reason == reasons.ENCRYPTED_ENTRY


def test_zip64_archives_with_more_than_65535_entries_are_listed(s3) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for i in range(65_600):
            zf.writestr(f"d/{i}.jpg", b"")
    reader = put(s3, buffer.getvalue())
    listing = inspect_archive(reader, LIMITS)
    assert len(listing.images) == 65_600
    assert listing.images[-1].path == "d/65599.jpg"


def test_utf8_and_cp437_names_are_decoded(s3) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("Cámara/ñandú.jpg", b"x")  # zipfile sets the UTF-8 flag
        legacy = zipfile.ZipInfo("CAM/IMG\x81.jpg")  # stored in CP437 (0x81 is u-umlaut)
        zf.writestr(legacy, b"y")
    names = [e.path for e in inspect_archive(put(s3, buffer.getvalue()), LIMITS).images]
    assert names == ["Cámara/ñandú.jpg", "CAM/IMG\x81.jpg"]


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_two_entries_with_the_same_name_are_both_listed(s3) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a/IMG_1.JPG", b"first")
        zf.writestr("a/IMG_1.JPG", b"second")
    reader = put(s3, buffer.getvalue())
    first, second = inspect_archive(reader, LIMITS).images
    assert first.path == second.path
    assert read_entry(reader, first, 100) == b"first"
    assert read_entry(reader, second, 100) == b"second"
