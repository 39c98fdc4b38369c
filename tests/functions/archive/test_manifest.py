"""Map items bounded by count, compressed bytes and their own size (Step Functions' limit)."""

from __future__ import annotations

import json

from functions.archive.manifest import manifest_items
from functions.archive.zip_reader import ArchiveListing, ZipEntry
from functions.platform import aws_limits

LIMIT = aws_limits.STATE_PAYLOAD.max_bytes


def entry(index: int, path: str, size: int = 1000) -> ZipEntry:
    return ZipEntry(name=path, path=path, header_offset=index * 10_000, compressed_size=size,
                    size=size, method=0, crc=0, flags=0)


def child_input(item: dict) -> bytes:
    """What the Map hands a child (and the child the Lambda), as the ASL's ItemSelector builds
    it, with the longest archive location a batch can have."""
    archive = {"Bucket": "animl-images-ingestion-" + "s" * 40, "Key": "k" * 1024}
    return json.dumps({"batchId": "batch-" + "0" * 36, "archive": archive, "item": item},
                      separators=(",", ":")).encode()


def test_items_of_long_paths_stay_under_the_state_payload_limit() -> None:
    folder = "/".join(["d" * 200] * 15)  # about 3 KB
    entries = [entry(i, f"{folder}/IMG_{i:04d}.JPG") for i in range(150)]
    items = manifest_items(ArchiveListing(entries, [], []), max_entries=50,
                           max_bytes=128 * 1024**2)

    assert all(len(child_input(item)) <= LIMIT for item in items)
    assert [e["path"] for item in items for e in item["entries"]] == [e.path for e in entries]
    # By count alone: 3 items, each 50 entries of a 3 KB name and a 3 KB path, about 300 KB.
    assert len(items) > 3


def test_non_ascii_paths_are_measured_as_written() -> None:
    entries = [entry(i, "é" * 1500 + f"/{i}.jpg") for i in range(50)]  # \\u00e9: 6 bytes each
    items = manifest_items(ArchiveListing(entries, [], []), 50, 128 * 1024**2)
    assert all(len(child_input(item)) <= LIMIT for item in items)
    assert sum(len(item["entries"]) for item in items) == 50


def test_short_paths_are_still_grouped_by_count() -> None:
    entries = [entry(i, f"cam/IMG_{i}.JPG") for i in range(120)]
    items = manifest_items(ArchiveListing(entries, [], []), 50, 128 * 1024**2)
    assert [len(item["entries"]) for item in items] == [50, 50, 20]
