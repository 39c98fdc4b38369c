"""The batch manifest: entries grouped into Map items of neighbouring entries."""

from __future__ import annotations

from typing import Any

from functions.archive.zip_reader import ArchiveListing, ZipEntry


def group_entries(entries: list[ZipEntry], max_entries: int, max_bytes: int
                  ) -> list[list[ZipEntry]]:
    """Consecutive entries (by offset) in groups bounded by count and compressed bytes."""
    groups: list[list[ZipEntry]] = []
    current: list[ZipEntry] = []
    current_bytes = 0
    for entry in sorted(entries, key=lambda e: e.header_offset):
        too_full = len(current) >= max_entries or (
            current and current_bytes + entry.compressed_size > max_bytes
        )
        if too_full:
            groups.append(current)
            current, current_bytes = [], 0
        current.append(entry)
        current_bytes += entry.compressed_size
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
