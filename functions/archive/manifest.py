"""The batch manifest: entries grouped into Map items of neighbouring entries."""

from __future__ import annotations

import json
from typing import Any

from functions.archive.zip_reader import ArchiveListing, ZipEntry
from functions.platform import aws_limits

# A Map item becomes a child's input, with the batch id and the archive's location beside it
# (a key of at most 1,024 bytes): this much of Step Functions' payload limit is kept for them.
ITEM_HEADROOM_BYTES = 16 * 1024
MAX_ITEM_BYTES = aws_limits.STATE_PAYLOAD.max_bytes - ITEM_HEADROOM_BYTES


def item_bytes(entry: ZipEntry) -> int:
    """What one entry adds to its item's JSON (escaped as json.dumps writes it, and a comma)."""
    return len(json.dumps(entry.to_item(), separators=(",", ":")).encode()) + 1


def group_entries(entries: list[ZipEntry], max_entries: int, max_bytes: int,
                  max_item_bytes: int = MAX_ITEM_BYTES) -> list[list[ZipEntry]]:
    """Consecutive entries (by offset) in groups bounded by count, compressed bytes and the
    size of their Map item (long paths make big items: 50 entries of 3 KB paths are 282 KiB)."""
    groups: list[list[ZipEntry]] = []
    current: list[ZipEntry] = []
    current_bytes = current_item_bytes = 0
    for entry in sorted(entries, key=lambda e: e.header_offset):
        entry_item_bytes = item_bytes(entry)
        too_full = current and (
            len(current) >= max_entries
            or current_bytes + entry.compressed_size > max_bytes
            or current_item_bytes + entry_item_bytes > max_item_bytes
        )
        if too_full:
            groups.append(current)
            current, current_bytes, current_item_bytes = [], 0, 0
        current.append(entry)
        current_bytes += entry.compressed_size
        current_item_bytes += entry_item_bytes
    if current:
        groups.append(current)
    return groups


def manifest_items(listing: ArchiveListing, max_entries: int, max_bytes: int
                   ) -> list[dict[str, Any]]:
    """The JSON array the Distributed Map's ItemReader reads: one item per group.

    Files that are not images go through the workers too, so that each is kept in dead-letter.
    """
    groups = group_entries([*listing.images, *listing.others], max_entries, max_bytes)
    return [
        {"group": index, "entries": [entry.to_item() for entry in group]}
        for index, group in enumerate(groups)
    ]
