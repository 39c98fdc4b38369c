"""Reading a zip archive in S3 without downloading it.

`inspect_archive` reads the central directory through ranged GETs (ZIP64, CP437 and UTF-8 names)
and returns the image entries. An entry name that is not what its flag says (invalid UTF-8) is
decoded with replacement characters and its raw bytes kept; an archive whose central directory
cannot be read (an interrupted copy) is listed from its local headers instead.
`read_entry` reads one entry's local header and data by offset, inflating as it reads and never
past the image size limit, so a worker never touches the central directory and never holds more
than the limit of one entry. Bad archives raise `BadArchive`, whose message is shown to the user.

Every read of the archive is pinned to the ETag first seen (If-Match): an object replaced during
ingestion raises `ArchiveChanged` instead of mixing two uploads.
"""

from __future__ import annotations

import io
import posixpath
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from functions.platform import reasons
from functions.platform.reasons import Rejected


class BadArchive(Exception):
    """The upload is not a readable zip archive (deterministic: retrying will not help)."""


class ArchiveChanged(Exception):
    """The archive's object is no longer the upload this batch inspected (deterministic: the new
    upload is ingested by its own execution)."""


ARCHIVE_CHANGED = "The archive changed during ingestion"
# What S3 answers when If-Match / x-amz-copy-source-if-match does not hold (HEAD has no body,
# so botocore names its error by the status code).
_PRECONDITION_FAILED = ("PreconditionFailed", "412")


def quoted_etag(etag: str) -> str:
    """An ETag as S3 returns it, in quotes (S3 event records give it bare)."""
    return f'"{etag.strip(chr(34))}"'


@contextmanager
def pinned_to(key: str, etag: str | None) -> Iterator[None]:
    """Turn S3's refusal of a pinned read (412 PreconditionFailed) into ArchiveChanged."""
    try:
        yield
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _PRECONDITION_FAILED:
            raise ArchiveChanged(
                f"{ARCHIVE_CHANGED}: {key} is no longer the upload with ETag {etag} that this "
                "batch inspected; the new upload is ingested by its own execution") from None
        raise


class S3RangeReader(io.RawIOBase):
    """A seekable, read-only file over one S3 object, each read a ranged GET pinned to one ETag.

    `etag`: the version to read (refused with ArchiveChanged if the object is another one); by
    default the ETag that the first HeadObject sees.
    """

    def __init__(self, s3: Any, bucket: str, key: str, size: int | None = None,
                 etag: str | None = None) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self.etag = quoted_etag(etag) if etag else None
        if size is None:
            with pinned_to(key, self.etag):
                head = s3.head_object(Bucket=bucket, Key=key, **self._if_match())
            size = head["ContentLength"]
            self.etag = self.etag or head.get("ETag")
        self._size = size
        self._pos = 0
        self.requests = 0

    def _if_match(self) -> dict[str, str]:
        return {"IfMatch": self.etag} if self.etag else {}

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
        with pinned_to(self._key, self.etag):
            reply = self._s3.get_object(Bucket=self._bucket, Key=self._key,
                                        Range=f"bytes={start}-{end}", **self._if_match())
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
        self.etag = reader.etag

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
    """Where one member's bytes are, as the central directory (or its local header) says."""

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
    raw_name: str | None = None  # the name's bytes (hex) when they did not decode as flagged
    detail: str | None = None  # why it was rejected from the directory, when the reason is not

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
    # Set when the central directory could not be read and the entries come from local headers.
    recovered: str | None = None


def safe_entry_path(name: str) -> str:
    """Map a member name to a relative POSIX path that cannot leave the batch's prefix."""
    cleaned = name.replace("\\", "/")
    if len(cleaned) >= 2 and cleaned[1] == ":":
        cleaned = cleaned[2:]  # drive letter
    parts = [p for p in cleaned.split("/") if p not in ("", ".", "..")]
    return posixpath.join(*parts) if parts else ""


def classify_entry(name: str) -> str | None:
    """None for an image entry (by its name, as the web app counts), else why it is not one."""
    path = safe_entry_path(name)
    if name.endswith(("/", "\\")) or not path:
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


# --- the zip format (APPNOTE.TXT): the records read here -------------------------------------
_END = struct.Struct("<4s4H2LH")  # end of central directory: 22 bytes and a comment
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_END = struct.Struct("<4sQ2H2L4Q")
_ZIP64_END_SIGNATURE = b"PK\x06\x06"
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_CENTRAL_SIGNATURE = b"PK\x01\x02"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_ZIP64_EXTRA = 0x0001
_UTF8_FLAG = 0x800
_DATA_DESCRIPTOR_FLAG = 0x08
_MAX_COMMENT = 0xFFFF
_FULL32, _FULL16 = 0xFFFFFFFF, 0xFFFF
# Room read with a local header for its name and extra field (one GET for most entries).
_HEADER_READ = 1024


def _entry(name: str, raw_name: str | None, header_offset: int, compressed_size: int,
           size: int, method: int, crc: int, flags: int, detail: str | None = None) -> ZipEntry:
    """One record of the directory (or one local header), before any check; `detail` is set
    when its bytes are known to be incomplete."""
    return ZipEntry(name=name, path=safe_entry_path(name), header_offset=header_offset,
                    compressed_size=compressed_size, size=size, method=method, crc=crc,
                    flags=flags, raw_name=raw_name, detail=detail)


def decode_name(raw: bytes, flags: int) -> tuple[str, str | None]:
    """(name, raw bytes in hex if they were not what the flag says); never raises."""
    if not flags & _UTF8_FLAG:
        return raw.decode("cp437"), None  # every byte is a CP437 character
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), raw.hex()


def _zip64_sizes(extra: bytes, size: int, compressed: int, offset: int) -> tuple[int, int, int]:
    """The ZIP64 extra field's values for the 32-bit fields that are full (in APPNOTE's order)."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4:at + 4 + length]
        at += 4 + length
        if kind != _ZIP64_EXTRA:
            continue
        values = [v for (v,) in struct.iter_unpack("<Q", body[:len(body) // 8 * 8])]
        if size == _FULL32 and values:
            size = values.pop(0)
        if compressed == _FULL32 and values:
            compressed = values.pop(0)
        if offset == _FULL32 and values:
            offset = values.pop(0)
    return size, compressed, offset


def _directory_span(reader: S3RangeReader) -> tuple[int, int, int]:
    """(where the directory starts, its length, bytes prepended to the archive), from the end
    records; BadArchive if there are none."""
    tail_start = max(0, reader.size - _END.size - _MAX_COMMENT)
    tail = reader.read_range(tail_start, reader.size - tail_start)
    at = tail.rfind(_END_SIGNATURE, 0, max(0, len(tail) - _END.size + 4))  # the last one
    if at < 0:
        raise BadArchive("Bad archive: not a zip file (no end of central directory)")
    end_at = tail_start + at
    *_, entries, cd_size, cd_offset, _comment = _END.unpack_from(tail, at)
    records_before = 0
    if _FULL32 in (cd_size, cd_offset) or entries == _FULL16:
        locator = reader.read_range(end_at - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size)
        if len(locator) == _ZIP64_LOCATOR.size and locator[:4] == _ZIP64_LOCATOR_SIGNATURE:
            record = reader.read_range(end_at - _ZIP64_LOCATOR.size - _ZIP64_END.size,
                                       _ZIP64_END.size)
            if len(record) != _ZIP64_END.size or record[:4] != _ZIP64_END_SIGNATURE:
                raise BadArchive("Bad archive: unreadable ZIP64 end of central directory")
            *_, cd_size, cd_offset = _ZIP64_END.unpack(record)
            records_before = _ZIP64_LOCATOR.size + _ZIP64_END.size
    cd_start = end_at - records_before - cd_size
    prepended = cd_start - cd_offset
    if cd_start < 0 or prepended < 0:
        raise BadArchive("Bad archive: the central directory lies outside the file")
    return cd_start, cd_size, prepended


def _central_directory(reader: S3RangeReader) -> list[ZipEntry]:
    """Every record of the central directory; BadArchive if it cannot be read."""
    cd_start, cd_size, prepended = _directory_span(reader)
    directory = reader.read_range(cd_start, cd_size)
    if len(directory) != cd_size:
        raise BadArchive("Bad archive: unreadable central directory (truncated)")
    members, at = [], 0
    while at < cd_size:
        if at + _CENTRAL.size > cd_size or directory[at:at + 4] != _CENTRAL_SIGNATURE:
            raise BadArchive(f"Bad archive: unreadable central directory (bad record at {at})")
        (_, _, _, flags, method, _, _, crc, compressed, size, name_length, extra_length,
         comment_length, _, _, _, offset) = _CENTRAL.unpack_from(directory, at)
        name_at = at + _CENTRAL.size
        raw = directory[name_at:name_at + name_length]
        extra = directory[name_at + name_length:name_at + name_length + extra_length]
        size, compressed, offset = _zip64_sizes(extra, size, compressed, offset)
        name, raw_name = decode_name(raw, flags)
        members.append(_entry(name, raw_name, offset + prepended, compressed, size, method,
                               crc, flags))
        at = name_at + name_length + extra_length + comment_length
    return members


def _local_headers(reader: S3RangeReader) -> tuple[list[ZipEntry], str]:
    """The entries that local headers describe, front to back, and what stopped the walk.

    For an archive whose central directory is gone (an interrupted copy). An entry whose sizes
    follow its data (a data descriptor, as streaming zippers write) cannot be delimited without
    the directory: it is listed with everything after its header, and the walk stops there.
    """
    members: list[ZipEntry] = []
    at = 0
    while True:
        head = reader.read_range(at, _HEADER_READ)
        if len(head) < _LOCAL_HEADER.size or head[:4] != _LOCAL_HEADER_SIGNATURE:
            stop = "end of the entries" if head[:4] in (_CENTRAL_SIGNATURE, _END_SIGNATURE) \
                else f"no entry header at byte {at}"
            return members, stop
        (_, _, flags, method, _, _, crc, compressed, size, name_length,
         extra_length) = _LOCAL_HEADER.unpack_from(head)
        fields = _LOCAL_HEADER.size + name_length + extra_length
        if len(head) < fields:
            head = reader.read_range(at, fields)
        if len(head) < fields:
            return members, f"the archive ends inside the header at byte {at}"
        raw = head[_LOCAL_HEADER.size:_LOCAL_HEADER.size + name_length]
        extra = head[_LOCAL_HEADER.size + name_length:fields]
        size, compressed, _ = _zip64_sizes(extra, size, compressed, 0)
        name, raw_name = decode_name(raw, flags)
        data_start = at + fields
        if flags & _DATA_DESCRIPTOR_FLAG and not compressed:
            members.append(_entry(name, raw_name, at, reader.size - data_start, 0, method, crc,
                                   flags, detail="its sizes follow its data (data descriptor) and "
                                   "the archive has no central directory: kept from its header "
                                   "to the end of the archive"))
            return members, f"entry {name!r} has no sizes in its local header"
        if data_start + compressed > reader.size:
            members.append(_entry(name, raw_name, at, compressed, size, method, crc, flags,
                                   detail="the archive ends inside this entry"))
            return members, f"the archive ends inside entry {name!r}"
        members.append(_entry(name, raw_name, at, compressed, size, method, crc, flags))
        at = data_start + compressed + (_descriptor_length(reader, data_start + compressed)
                                        if flags & _DATA_DESCRIPTOR_FLAG else 0)


def _descriptor_length(reader: S3RangeReader, at: int) -> int:
    """A data descriptor after an entry whose local header has its sizes too: skip it."""
    signature = reader.read_range(at, 4)
    return 16 if signature == b"PK\x07\x08" else 12


def inspect_archive(reader: S3RangeReader, limits: EntryLimits) -> ArchiveListing:
    """List the archive's entries from its central directory, or from its local headers when
    the directory cannot be read; raise BadArchive if neither gives an entry.

    Entries over a limit stay in the listing with `rejected` set, so each gets an outcome.
    """
    if reader.size == 0:
        raise BadArchive("Bad archive: the file is empty (0 bytes)")
    recovered = None
    try:
        members = _central_directory(reader)
    except BadArchive as unreadable:
        members, stop = _local_headers(reader)
        if not members:
            raise unreadable from None
        recovered = (f"{unreadable}: {len(members)} entr{'y' if len(members) == 1 else 'ies'} "
                     f"read from local headers ({stop})")
    return _listing(members, limits, recovered)


def _listing(members: list[ZipEntry], limits: EntryLimits, recovered: str | None
             ) -> ArchiveListing:
    images, others, skipped = [], [], []
    total = 0
    for member in members:
        not_an_image = classify_entry(member.name)
        if not_an_image in _KEPT_UNCOUNTED:
            others.append(replace(member, rejected=not_an_image, counted=False, detail=None))
        elif not_an_image:
            skipped.append({"path": member.name, "reason": not_an_image})
        else:
            total += member.size
            images.append(replace(member, rejected=_over_limit(member, total, limits)))
    return ArchiveListing(images=images, others=others, skipped=skipped, recovered=recovered)


def least_inflated_size(compressed_size: int, method: int) -> int:
    """The fewest bytes an entry of this stored size can inflate to: stored data is itself; a
    deflate stream spends at most 5 bytes of framing per 65,535 bytes of stored blocks."""
    if method == zipfile.ZIP_DEFLATED:
        return max(0, compressed_size - 5 * (compressed_size // 65_535 + 1) - 2)
    return compressed_size if method == zipfile.ZIP_STORED else 0


def _over_limit(member: ZipEntry, running_total: int, limits: EntryLimits) -> str | None:
    if member.detail:
        return reasons.CORRUPTED_IMAGE_FILE
    # The directory's size may lie: what the stored bytes must inflate to counts too.
    if max(member.size, least_inflated_size(member.compressed_size, member.method)) \
            > limits.max_entry_bytes:
        return reasons.IMAGE_TOO_LARGE
    if member.size > max(member.compressed_size, 1) * limits.max_compression_ratio:
        return reasons.COMPRESSION_RATIO_TOO_HIGH
    if running_total > limits.max_total_bytes:
        return reasons.BATCH_TOO_LARGE
    return None


_METHOD_NAMES = {9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstandard", 95: "xz", 98: "ppmd"}
# Stored bytes are fetched and inflated this much at a time: an entry never sits whole in
# memory twice, and reading stops as soon as the output passes the limit.
READ_CHUNK = 8 * 1024 * 1024


def read_entry(reader: S3RangeReader | PrefetchedSpan, entry: ZipEntry, max_bytes: int) -> bytes:
    """The decompressed bytes of one entry, CRC-checked; Rejected with a reason if not.

    Never reads or inflates more than `max_bytes` (plus one chunk of stored bytes), whatever the
    directory claims.
    """
    _refuse_by_directory(entry, max_bytes)
    data_start, _ = _local_data_start(reader, entry)
    if data_start is None:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, "local header not found")
    data = _inflate(_stored_chunks(reader, data_start, entry.compressed_size), entry, max_bytes)
    if zlib.crc32(data) != entry.crc:
        raise Rejected(reasons.CORRUPTED_IMAGE_FILE, "CRC mismatch")
    return data


def _refuse_by_directory(entry: ZipEntry, max_bytes: int) -> None:
    """What the directory alone says against reading the entry."""
    if entry.rejected:
        detail = (entry.detail or f"{entry.size} bytes from {entry.compressed_size}"
                  if entry.counted else "not an image: kept in dead-letter, not ingested")
        raise Rejected(entry.rejected, detail)
    if entry.flags & 0x1:
        raise Rejected(reasons.ENCRYPTED_ENTRY, "the entry is encrypted")
    if entry.method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        method = _METHOD_NAMES.get(entry.method, f"method {entry.method}")
        raise Rejected(reasons.UNSUPPORTED_COMPRESSION, f"{method} is not supported")
    if max(entry.size, least_inflated_size(entry.compressed_size, entry.method)) > max_bytes:
        raise Rejected(reasons.IMAGE_TOO_LARGE,
                       f"{max(entry.size, entry.compressed_size)} bytes: over the size limit")


def _local_data_start(reader: S3RangeReader | PrefetchedSpan, entry: ZipEntry
                      ) -> tuple[int | None, int]:
    """(where the entry's stored bytes start, by its local header, or None; header length)."""
    header = reader.read_range(entry.header_offset, _LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_HEADER_SIGNATURE:
        return None, 0
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    fields = _LOCAL_HEADER.size + name_length + extra_length
    return entry.header_offset + fields, fields


def _stored_chunks(reader: S3RangeReader | PrefetchedSpan, start: int, length: int
                   ) -> Iterator[bytes]:
    """The stored bytes in chunks; Rejected if the archive ends before `length` bytes."""
    for at in range(start, start + length, READ_CHUNK):
        want = min(READ_CHUNK, start + length - at)
        chunk = reader.read_range(at, want)
        if len(chunk) != want:
            raise Rejected(reasons.CORRUPTED_IMAGE_FILE, "the entry's data is truncated")
        yield chunk


def _inflate(chunks: Iterator[bytes], entry: ZipEntry, max_bytes: int) -> bytes:
    """Stored or deflated chunks to the entry's bytes, refused the moment they pass the limit."""
    out = bytearray()
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if entry.method == zipfile.ZIP_DEFLATED \
        else None
    for chunk in chunks:
        pending = chunk
        while pending:
            if inflater is None:
                out += pending
                pending = b""
            else:
                try:  # max_length: a lying size field cannot make us inflate a bomb
                    out += inflater.decompress(pending, max_bytes + 1 - len(out))
                except zlib.error as exc:
                    raise Rejected(reasons.CORRUPTED_IMAGE_FILE,
                                   f"deflate error: {exc}") from None
                pending = inflater.unconsumed_tail
            if len(out) > max_bytes:
                raise Rejected(reasons.IMAGE_TOO_LARGE, "inflates past the size limit")
    return bytes(out)


def entry_data_range(reader: S3RangeReader | PrefetchedSpan, entry: ZipEntry
                     ) -> tuple[int, int]:
    """(start, length) of the entry's stored bytes; from its local header when that is sane."""
    start, _ = _local_data_start(reader, entry)
    if start is not None:
        return start, max(0, min(entry.compressed_size, reader.size - start))
    # No usable header: keep everything from where the entry should start.
    start = min(entry.header_offset, reader.size)
    return start, min(reader.size - start, entry.compressed_size + _LOCAL_HEADER.size + 1024)
