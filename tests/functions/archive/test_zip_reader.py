"""Reading archives in S3 by range GETs: listing, entry reads, and bad archives."""

from __future__ import annotations

import io
import random
import struct
import tracemalloc
import zipfile
from dataclasses import replace
from typing import Any

import pytest

from functions.archive.zip_reader import (
    ArchiveChanged,
    BadArchive,
    EntryLimits,
    S3RangeReader,
    entry_data_range,
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
    (b"PK\x03\x04" + bytes(10), "not a zip"),  # a local header cut short: nothing readable
])
def test_bad_archives_raise_with_a_clear_message(s3, data: bytes, message: str) -> None:
    with pytest.raises(BadArchive) as bad:
        inspect_archive(put(s3, data), LIMITS)
    assert str(bad.value).startswith("Bad archive:")
    assert message in str(bad.value)


def test_a_corrupt_central_directory_is_read_from_the_local_headers(s3) -> None:
    data = bytearray(zip_bytes({"a.jpg": b"x" * 1000, "b.jpg": b"y" * 1000}))
    directory = data.index(b"PK\x01\x02")
    data[directory:directory + 4] = b"XXXX"  # the first directory entry's signature
    reader = put(s3, bytes(data))
    listing = inspect_archive(reader, LIMITS)
    assert listing.recovered and "unreadable central directory" in listing.recovered
    assert [read_entry(reader, e, 10**6) for e in listing.images] == [b"x" * 1000, b"y" * 1000]


PHOTOS = {f"cam/IMG_{i}.jpg": random.Random(i).randbytes(5000) for i in range(4)}


@pytest.mark.parametrize("cut", [30, 200])  # inside the end record; inside the directory
def test_an_archive_cut_at_its_end_has_every_entry_read_from_local_headers(s3, cut: int
                                                                             ) -> None:
    reader = put(s3, zip_bytes(PHOTOS)[:-cut])
    listing = inspect_archive(reader, LIMITS)
    assert listing.recovered and "4 entries read from local headers" in listing.recovered
    assert {e.path: read_entry(reader, e, 10**6) for e in listing.images} == PHOTOS


def test_an_archive_cut_inside_an_entry_keeps_the_complete_ones_and_reports_the_cut_one(s3
                                                                                      ) -> None:
    data = zip_bytes(PHOTOS, zipfile.ZIP_STORED)
    cut_at = data.index(PHOTOS["cam/IMG_2.jpg"]) + 100
    reader = put(s3, data[:cut_at])
    listing = inspect_archive(reader, LIMITS)
    first, second, cut = listing.images
    assert read_entry(reader, first, 10**6) == PHOTOS["cam/IMG_0.jpg"]
    assert read_entry(reader, second, 10**6) == PHOTOS["cam/IMG_1.jpg"]
    assert cut.path == "cam/IMG_2.jpg" and cut.rejected == reasons.CORRUPTED_IMAGE_FILE
    with pytest.raises(Rejected, match="the archive ends inside this entry"):
        read_entry(reader, cut, 10**6)
    assert entry_data_range(reader, cut)[1] == 100  # what there is of it is kept
    assert "ends inside entry 'cam/IMG_2.jpg'" in (listing.recovered or "")


def streamed_zip(members: dict[str, bytes]) -> bytes:
    """As a zipper writing to a pipe does: sizes in a data descriptor after each entry."""
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.data += b
            return len(b)

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return bytes(pipe.data)


def test_entries_without_sizes_in_their_local_header_are_reported_when_the_directory_is_gone(
        s3) -> None:
    data = streamed_zip(PHOTOS)
    assert data.count(b"PK\x07\x08") == 4  # each entry has a data descriptor
    reader = put(s3, data[:data.index(b"PK\x01\x02")])  # no central directory
    listing = inspect_archive(reader, LIMITS)
    [unknown] = listing.images  # the walk cannot find where the first one ends
    assert unknown.rejected == reasons.CORRUPTED_IMAGE_FILE and unknown.path == "cam/IMG_0.jpg"
    with pytest.raises(Rejected, match="data descriptor"):
        read_entry(reader, unknown, 10**6)
    start, length = entry_data_range(reader, unknown)
    assert start + length == len(data[:data.index(b"PK\x01\x02")])  # all of it is kept
    # With its directory, the same streamed archive reads whole.
    whole = put(s3, data, key="whole.zip")
    assert {e.path: read_entry(whole, e, 10**6) for e in inspect_archive(whole, LIMITS).images
            } == PHOTOS


def with_invalid_utf8_name(good: str, bad_part: str) -> bytes:
    """A zip whose entry `bad_part` has a byte that is not UTF-8 in its name, flag set."""
    data = zip_bytes({good: b"good", f"cam/\u00f1{bad_part}.jpg": b"bad name"})
    return data.replace(bad_part.encode(), b"\xff\xfe", 2)  # its local header and directory


def test_a_name_that_is_not_the_utf8_its_flag_says_is_kept_with_its_raw_bytes(s3) -> None:
    reader = put(s3, with_invalid_utf8_name("cam/ok.jpg", "QQ"))
    listing = inspect_archive(reader, LIMITS)
    assert listing.recovered is None
    good, odd = listing.images
    assert good.raw_name is None and read_entry(reader, good, 100) == b"good"
    assert odd.path == "cam/\u00f1\ufffd\ufffd.jpg"
    assert bytes.fromhex(odd.raw_name or "") == "cam/\u00f1".encode() + b"\xff\xfe.jpg"
    assert read_entry(reader, odd, 100) == b"bad name"


def test_a_stored_entry_bigger_than_its_directory_says_is_refused_without_reading_it(s3
                                                                                   ) -> None:
    data = bytearray(zip_bytes({"lie.jpg": bytes(300_000)}, zipfile.ZIP_STORED))
    directory = data.index(b"PK\x01\x02")
    struct.pack_into("<L", data, directory + 24, 1000)  # uncompressed size: "1,000 bytes"
    reader = put(s3, bytes(data))
    [entry] = inspect_archive(reader, replace(LIMITS, max_entry_bytes=100_000)).images
    assert entry.size == 1000 and entry.rejected == reasons.IMAGE_TOO_LARGE
    small_limit = replace(entry, rejected=None)  # as if the directory had not been checked
    before = reader.requests
    with pytest.raises(Rejected) as unreadable:
        read_entry(reader, small_limit, max_bytes=100_000)
    assert unreadable.value.reason == reasons.IMAGE_TOO_LARGE
    assert reader.requests == before  # not one byte of it was fetched


def test_a_deflated_entry_that_inflates_past_the_limit_stops_at_the_limit(s3) -> None:
    data = bytearray(zip_bytes({"lie.jpg": bytes(64 * 1024 * 1024)}))
    directory = data.index(b"PK\x01\x02")
    struct.pack_into("<L", data, directory + 24, 1000)  # claims 1,000 bytes
    reader = put(s3, bytes(data))
    [entry] = inspect_archive(reader, LIMITS).images
    tracemalloc.start()
    try:
        with pytest.raises(Rejected, match="inflates past the size limit"):
            read_entry(reader, entry, max_bytes=4 * 1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 * 1024 * 1024  # the limit and a chunk, not the 64 MiB it inflates to


def test_reads_are_pinned_to_the_version_first_seen(s3) -> None:
    reader = put(s3, zip_bytes(PHOTOS))
    listing = inspect_archive(reader, LIMITS)
    s3.put_object(Bucket=BUCKET, Key="a.zip", Body=zip_bytes({"other.jpg": b"new upload"}))
    with pytest.raises(ArchiveChanged, match="The archive changed during ingestion"):
        read_entry(reader, listing.images[0], 10**6)
    with pytest.raises(ArchiveChanged):  # an ETag as S3 events give it: without quotes
        S3RangeReader(s3, BUCKET, "a.zip", etag=reader.etag.strip('"'))
    current = s3.head_object(Bucket=BUCKET, Key="a.zip")["ETag"]
    assert S3RangeReader(s3, BUCKET, "a.zip", etag=current.strip('"')).etag == current


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


@pytest.mark.slow  # 65,600 entries, written and listed
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
