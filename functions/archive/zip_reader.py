"""Reading a zip archive in S3 without downloading it.

`inspect_archive` reads the central directory through ranged GETs (Python's zipfile over a seekable
S3 reader: ZIP64 and CP437/UTF-8 names come for free) and returns the image entries.
`read_entry` reads one entry's local header and data by offset, so a worker never touches the
central directory. Bad archives raise `BadArchive`, whose message is shown to the user.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from functions.platform import reasons
from functions.platform.reasons import Rejected


class BadArchive(Exception):
    """The upload is not a readable zip archive (deterministic: retrying will not help)."""




class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object, each read a ranged GET."""

    def __init__(self, s3: Any, bucket: str, key: str, size: int | None = None) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self._size = size if size is not None else s3.head_object(Bucket=bucket, Key=key)[
            "ContentLength"]
        self._pos = 0
        self.requests = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read_range(self, start: int, length: int) -> bytes:
        if length <= 0 or start >= self._size:
            return b""
        end = min(self._size, start + length) - 1
        self.requests += 1
        reply = self._s3.get_object(Bucket=self._bucket, Key=self._key,
                                    Range=f"bytes={start}-{end}")
        return reply["Body"].read()

    def readinto(self, buffer: Any) -> int:
        data = self.read_range(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


class PrefetchedSpan:
    """One ranged GET for a run of neighbouring entries; reads outside it go to the reader."""

    def __init__(self, reader: S3RangeReader, start: int, length: int) -> None:
        self._reader, self.start = reader, start
        self.data = reader.read_range(start, length)
        self.size = reader.size

    def read_range(self, start: int, length: int) -> bytes:
        offset = start - self.start
        if 0 <= offset and offset + length <= len(self.data):
            return self.data[offset:offset + length]
        return self._reader.read_range(start, length)


# Room for a local header's name and extra field beyond the central directory's sizes.
LOCAL_HEADER_SLACK = 1024


def prefetch_group(reader: S3RangeReader, entries: list[ZipEntry], max_bytes: int
                   ) -> S3RangeReader | PrefetchedSpan:
    """A reader for these entries that fetches them all at once when their span is small."""
    wanted = [e for e in entries if not e.rejected]
    if not wanted:
        return reader
    start = min(e.header_offset for e in wanted)
    end = max(e.header_offset + _LOCAL_HEADER.size + len(e.name.encode()) + e.compressed_size
              for e in wanted) + LOCAL_HEADER_SLACK
    if end - start > max_bytes:
        return reader
    return PrefetchedSpan(reader, start, min(end, reader.size) - start)


@dataclass(frozen=True)
class ZipEntry:
    """Where one member's bytes are, as the central directory says."""

    name: str
    path: str  # a safe relative path: what the entry is called inside the batch
    header_offset: int
    compressed_size: int
    size: int
    method: int
    crc: int
    flags: int
    rejected: str | None = None  # a reason found from the directory alone (limits)
    # An image by its name, so in the batch's `total`; other files are only kept in dead-letter.
    counted: bool = True

    def to_item(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ZipEntry:
        return cls(**item)


@dataclass(frozen=True)
class ArchiveListing:
    images: list[ZipEntry]  # counted in the batch's total
    others: list[ZipEntry]  # files that are not images (videos, documents): kept, not counted
    skipped: list[dict[str, str]]  # {"path", "reason"}: folders and hidden system files


def safe_entry_path(name: str) -> str:
    """Map a member name to a relative POSIX path that cannot leave the batch's prefix."""
    cleaned = name.replace("\\", "/")
    if len(cleaned) >= 2 and cleaned[1] == ":":
        cleaned = cleaned[2:]  # drive letter
    parts = [p for p in cleaned.split("/") if p not in ("", ".", "..")]
    return posixpath.join(*parts) if parts else ""


def classify_entry(info: zipfile.ZipInfo) -> str | None:
    """None for an image entry (by its name, as the web app counts), else why it is not one."""
    path = safe_entry_path(info.filename)
    if info.is_dir() or not path:
        return reasons.SKIPPED_DIRECTORY
    segments = path.split("/")
    if segments[0] == "__MACOSX" or any(s.startswith(".") for s in segments):
        return reasons.SKIPPED_HIDDEN
    if reasons.is_image_name(path):
        return None
    if path.lower().endswith(reasons.VIDEO_EXTENSIONS):
        return reasons.VIDEO_FILE
    return reasons.SKIPPED_UNSUPPORTED_TYPE


# Not images, but a user's files: kept in dead-letter (server-side copies), not counted.
_KEPT_UNCOUNTED = (reasons.VIDEO_FILE, reasons.SKIPPED_UNSUPPORTED_TYPE)


@dataclass(frozen=True)
class EntryLimits:
    max_entry_bytes: int
    max_compression_ratio: int
    max_total_bytes: int


def inspect_archive(reader: S3RangeReader, limits: EntryLimits) -> ArchiveListing:
    """List the archive's entries from its central directory; raise BadArchive if unreadable.

    Entries over a limit stay in the listing with `rejected` set, so each gets an outcome.
    """
    if reader.size == 0:
        raise BadArchive("Bad archive: the file is empty (0 bytes)")
    try:
        # A buffered view keeps zipfile's many small reads to few ranged GETs.
        with zipfile.ZipFile(io.BufferedReader(reader, buffer_size=1 << 20)) as archive:
            infos = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise BadArchive(f"Bad archive: {exc}") from None
    except (EOFError, struct.error, ValueError, OSError) as exc:
        raise BadArchive(f"Bad archive: unreadable central directory ({exc})") from None
    images, others, skipped = [], [], []
    total = 0
    for info in infos:
        not_an_image = classify_entry(info)
        if not_an_image in _KEPT_UNCOUNTED:
            others.append(_zip_entry(info, rejected=not_an_image, counted=False))
        elif not_an_image:
            skipped.append({"path": info.filename, "reason": not_an_image})
        else:
            total += info.file_size
            images.append(_zip_entry(info, rejected=_over_limit(info, total, limits)))
    return ArchiveListing(images=images, others=others, skipped=skipped)


def _zip_entry(info: zipfile.ZipInfo, rejected: str | None, counted: bool = True) -> ZipEntry:
    return ZipEntry(
        name=info.filename,
        path=safe_entry_path(info.filename),
        header_offset=info.header_offset,
        compressed_size=info.compress_size,
        size=info.file_size,
        method=info.compress_type,
        crc=info.CRC,
        flags=info.flag_bits,
        rejected=rejected,
        counted=counted,
    )


def _over_limit(info: zipfile.ZipInfo, running_total: int, limits: EntryLimits) -> str | None:
    if info.file_size > limits.max_entry_bytes:
        return reasons.IMAGE_TOO_LARGE
    if info.file_size > max(info.compress_size, 1) * limits.max_compression_ratio:
        return reasons.COMPRESSION_RATIO_TOO_HIGH
    if running_total > limits.max_total_bytes:
        return reasons.BATCH_TOO_LARGE
    return None


_METHOD_NAMES = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 95: "xz", 98: "ppmd"}
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"


def read_entry(reader: S3RangeReader | PrefetchedSpan, entry: ZipEntry, max_bytes: int) -> bytes:
    """The decompressed bytes of one entry, CRC-checked; Rejected with a reason if not."""
    if entry.rejected:
        detail = (f"{entry.size} bytes from {entry.compressed_size}" if entry.counted
                  else "not an image: kept in dead-letter, not ingested")
        raise Rejected(entry.rejected, detail)
    if entry.flags & 0x1:
        raise Rejected(reasons.ENCRYPTED_ENTRY, "the entry is encrypted")
    if entry.method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = _METHOD_NAMES.get(entry.method, f"method {entry.method}")
        raise Rejected(reasons.UNSUPPORTED_COMPRESSION, f"{method} is not supported")
    if entry.size > max_bytes:
        raise Rejected(reasons.IMAGE_TOO_LARGE, f"{entry.size} bytes uncompressed")
    header = reader.read_range(entry.header_offset, _LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_HEADER_SIGNATURE:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, "local header not found")
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    data_start = entry.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    raw = reader.read_range(data_start, entry.compressed_size)
    if len(raw) != entry.compressed_size:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, "the entry's data is truncated")
    data = _decompress(raw, entry, max_bytes)
    if zlib.crc32(data) != entry.crc:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, "CRC mismatch")
    return data


def entry_data_range(reader: S3RangeReader | PrefetchedSpan, entry: ZipEntry
                     ) -> tuple[int, int]:
    """(start, length) of the entry's stored bytes; from its local header when that is sane."""
    header = reader.read_range(entry.header_offset, _LOCAL_HEADER.size)
    if len(header) == _LOCAL_HEADER.size and header[:4] == _LOCAL_HEADER_SIGNATURE:
        name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
        start = entry.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        return start, max(0, min(entry.compressed_size, reader.size - start))
    # No usable header: keep everything from where the entry should start.
    start = min(entry.header_offset, reader.size)
    return start, min(reader.size - start, entry.compressed_size + _LOCAL_HEADER.size + 1024)


def _decompress(raw: bytes, entry: ZipEntry, max_bytes: int) -> bytes:
    if entry.method == zipfile.ZIP_STORED:
        return raw
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        # Bounded output: a lying size field cannot make us inflate a bomb.
        data = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, f"deflate error: {exc}") from None
    if len(data) > max_bytes:
        raise Rejected(reasons.IMAGE_TOO_LARGE, "inflates past the size limit")
    return data
