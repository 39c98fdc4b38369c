"""A small, defensive reader of the EXIF (TIFF) structure in JPEG, PNG and raw TIFF headers.

Why not piexif's loader alone: it drops the last character of every ASCII value, assuming a NUL
that some cameras do not write (a Make of "SY" comes back as "S"). This reader keeps the whole
value up to the first NUL, bounds-checks every offset, and never raises on malformed input.
Tag names still come from piexif's tables (see `metadata`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

EXIF_IFD_POINTER = 0x8769
GPS_IFD_POINTER = 0x8825
MAX_ENTRIES = 1000  # per IFD; real files have tens
MAX_VALUE_BYTES = 1 << 20

# TIFF type -> (struct code, size in bytes)
_TYPES = {1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("L", 4), 5: ("LL", 8), 6: ("b", 1),
          7: ("s", 1), 8: ("h", 2), 9: ("l", 4), 10: ("ll", 8), 11: ("f", 4), 12: ("d", 8)}
ASCII, UNDEFINED = 2, 7


@dataclass
class ExifData:
    ifds: dict[str, dict[int, Any]] = field(default_factory=dict)  # "0th", "Exif", "GPS"
    comments: list[bytes] = field(default_factory=list)  # JPEG COM segments

    def get(self, ifd: str, tag: int) -> Any:
        return self.ifds.get(ifd, {}).get(tag)


def read_exif_data(data: bytes) -> ExifData:
    """Everything we can read; an empty ExifData when there is nothing (or nothing sane)."""
    if data[:3] == b"\xff\xd8\xff":
        tiff, comments = _jpeg_exif_and_comments(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        tiff, comments = _png_exif(data), []
    else:
        tiff, comments = None, []
    result = _read_tiff(tiff) if tiff else ExifData()
    result.comments = comments
    return result


def _jpeg_exif_and_comments(data: bytes) -> tuple[bytes | None, list[bytes]]:
    exif, comments, pos = None, [], 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end: no more metadata
            break
        length = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and exif is None and segment[:6] == b"Exif\x00\x00":
            exif = segment[6:]
        elif marker == 0xFE:
            comments.append(segment)
        pos += 2 + length
    return exif, comments


def _png_exif(data: bytes) -> bytes | None:
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">L4s", data[pos:pos + 8])
        if kind == b"eXIf":
            return data[pos + 8:pos + 8 + length]
        if kind == b"IEND":
            break
        pos += 12 + length
    return None


def _read_tiff(tiff: bytes) -> ExifData:
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return ExifData()
    order = "<" if tiff[:2] == b"II" else ">"
    result = ExifData()
    first = _unpack(order + "L", tiff, 4)
    seen: set[int] = set()
    zeroth = _read_ifd(tiff, first, order, seen) if first else {}
    result.ifds["0th"] = zeroth
    for name, pointer in (("Exif", EXIF_IFD_POINTER), ("GPS", GPS_IFD_POINTER)):
        offset = zeroth.get(pointer)
        if isinstance(offset, int):
            result.ifds[name] = _read_ifd(tiff, offset, order, seen)
    return result


def _read_ifd(tiff: bytes, offset: int, order: str, seen: set[int]) -> dict[int, Any]:
    if offset in seen or offset + 2 > len(tiff):
        return {}
    seen.add(offset)
    count = _unpack(order + "H", tiff, offset)
    entries: dict[int, Any] = {}
    for index in range(min(count or 0, MAX_ENTRIES)):
        at = offset + 2 + 12 * index
        if at + 12 > len(tiff):
            break
        tag, kind, n = struct.unpack(order + "HHL", tiff[at:at + 8])
        value = _value(tiff, at + 8, kind, n, order)
        if value is not None and tag not in entries:
            entries[tag] = value
    return entries


def _value(tiff: bytes, at: int, kind: int, count: int, order: str) -> Any:
    if kind not in _TYPES or count == 0:
        return None
    code, size = _TYPES[kind]
    total = size * count
    if total > MAX_VALUE_BYTES:
        return None
    start = at if total <= 4 else _unpack(order + "L", tiff, at)
    if start is None or start + total > len(tiff):
        return None
    raw = tiff[start:start + total]
    if kind == ASCII:
        return raw.split(b"\x00", 1)[0]
    if kind == UNDEFINED:
        return raw
    values = struct.unpack(order + code * count, raw)
    if kind in (5, 10):
        pairs = tuple(zip(values[::2], values[1::2], strict=True))
        return pairs[0] if count == 1 else pairs
    return values[0] if count == 1 else values


def _unpack(fmt: str, data: bytes, at: int) -> Any:
    size = struct.calcsize(fmt)
    if at < 0 or at + size > len(data):
        return None
    return struct.unpack(fmt, data[at:at + size])[0]
