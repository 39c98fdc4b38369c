"""Three paths of moto's S3 (5.2.5) made to keep an object's bytes where moto spooled them (on
disk), and one precondition moto skips.

A local run uploads its whole archive (1 GB for 1,000 photos) and reads it back in ranges:
- CompleteMultipartUpload: moto joins the parts in memory (a bytearray, a bytes copy of it and
  a second bytearray for the full-object checksum: about four times the archive in RAM), then
  stores it with put_object, which also sends a second ObjectCreated event. Here the object
  reads its parts' own spooled files in order (copying them wrote the whole archive to disk a
  second time: 5 of a 1,000-photo run's 15 upload seconds) and one event is sent, as S3 does.
  The parts' records keep empty buffers; the object owns their bytes.
- GetObject with a Range: moto reads the whole object, then slices it. Here only the range is
  read from the key's buffer.
- UploadPartCopy with x-amz-copy-source-range: the same, for a part copied server-side. Here
  only the range is read. moto also ignores `x-amz-copy-source-if-match` (and -if-none-match),
  which AWS answers with 412 PreconditionFailed when the source's ETag does not hold: here it is
  checked first, so a pinned copy cannot take another object's bytes.
Local only, entered by the embedded stage. moto's own behaviour is the reference: the tests
compare every answer (bytes, ETag, ranges, the events) with unpatched moto's.
"""

from __future__ import annotations

import io
import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import unquote, urlparse

from moto.s3 import notifications
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML, PreconditionFailed
from moto.s3.models import FakeKey, S3Backend
from moto.s3.responses import S3Response
from moto.settings import S3_UPLOAD_PART_MIN_SIZE
from moto.utilities.utils import md5_hash

# The Range forms read from the buffer; anything else is left to moto.
_SIMPLE_RANGE = re.compile(r"^bytes=(\d+-\d*|-\d+)$")
_ranged = threading.local()
_original_value: Any = FakeKey.value  # a property


class _KeySlice:
    """What moto's range handling takes from a body: its length and one slice of it."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __len__(self) -> int:
        return int(self._key.size)

    def __getitem__(self, part: slice) -> bytes:
        start, stop, _ = part.indices(len(self))
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return bytes(self._key._value_buffer.read(max(0, stop - start)))


class _JoinedParts:
    """A completed upload's bytes: its parts' spooled files read one after another, with the
    file methods moto and this module use on a key's buffer (seek, tell, read, close). The
    object's bytes never change after completion (a new upload is a new key), so writing is
    refused."""

    def __init__(self, buffers: list[Any]) -> None:
        self._buffers = buffers
        self._sizes = [buffer.seek(0, io.SEEK_END) for buffer in buffers]
        self._size = sum(self._sizes)
        self._position = 0
        self.closed = False

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}
        self._position = max(0, base[whence] + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        wanted = self._size - self._position if size is None or size < 0 else size
        chunks, start = [], 0
        for buffer, length in zip(self._buffers, self._sizes, strict=True):
            offset = self._position - start
            if wanted > 0 and 0 <= offset < length:
                buffer.seek(offset)
                chunk = buffer.read(min(wanted, length - offset))
                chunks.append(chunk)
                self._position += len(chunk)
                wanted -= len(chunk)
            start += length
        return b"".join(chunks)

    def write(self, data: bytes) -> int:
        raise io.UnsupportedOperation("a completed upload's bytes are not rewritten")

    def truncate(self, size: int | None = None) -> int:
        raise io.UnsupportedOperation("a completed upload's bytes are not rewritten")

    def close(self) -> None:
        for buffer in self._buffers:
            buffer.close()
        self.closed = True


def _value(key: FakeKey) -> Any:
    if getattr(_ranged, "on", False):
        return _KeySlice(key)
    return _original_value.fget(key)


def _get_object(original: Any) -> Any:
    def get_object(self: S3Response) -> Any:
        if not _SIMPLE_RANGE.match(self.headers.get("range") or ""):
            return original(self)
        _ranged.on = True
        try:
            return original(self)
        finally:
            _ranged.on = False
    return get_object


def _etag_matches(condition: str, etag: str) -> bool:
    # S3 compares ETags with or without their quotes; "*" matches any object.
    return condition.strip() == "*" or condition.replace('"', "") == etag.replace('"', "")


def _copy_source_preconditions(response: S3Response) -> None:
    """x-amz-copy-source-if-match / -if-none-match, as AWS checks them: 412 when they fail."""
    source = unquote(urlparse(response.headers.get("x-amz-copy-source") or "").path)
    bucket, _, key_name = source.lstrip("/").partition("/")
    key = response.backend.get_object(bucket, key_name)
    if key is None:
        return  # moto answers the missing source itself
    if_match = response.headers.get("x-amz-copy-source-if-match")
    if if_match and not _etag_matches(if_match, key.etag):
        raise PreconditionFailed("x-amz-copy-source-If-Match")
    if_none_match = response.headers.get("x-amz-copy-source-if-none-match")
    if if_none_match and _etag_matches(if_none_match, key.etag):
        raise PreconditionFailed("x-amz-copy-source-If-None-Match")


def _upload_part_copy(original: Any) -> Any:
    def upload_part_copy(self: S3Response) -> Any:
        _copy_source_preconditions(self)
        ranged = re.match(r"^bytes=\d+-\d+$", self.headers.get("x-amz-copy-source-range") or "")
        if not ranged:
            return original(self)
        _ranged.on = True  # moto slices the source's value: read only that slice
        try:
            return original(self)
        finally:
            _ranged.on = False
    return upload_part_copy


def _handle_range_header(original: Any) -> Any:
    def handle(self: S3Response, request: Any, headers: Any, content: Any) -> Any:
        status, headers, body = original(self, request, headers, content)
        if isinstance(body, _KeySlice):  # a range moto answers with the whole object
            body = body[0:len(body)]
        return status, headers, body
    return handle


def _complete_multipart_upload(self: S3Backend, bucket_name: str, multipart_id: str,
                               body: Iterator[tuple[int, str]]) -> FakeKey:
    bucket = self.get_bucket(bucket_name)
    multipart = bucket.multiparts[multipart_id]
    md5s, parts, last = bytearray(), [], None
    for number, etag in body:  # the same checks as moto's FakeMultipart.complete
        part = multipart.parts.get(number)
        if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
            raise InvalidPart()
        if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        md5s.extend(bytes.fromhex(part.etag.replace('"', "")))
        parts.append(part)
        last = part
    if not parts:
        raise MalformedXML
    full_etag = md5_hash()
    full_etag.update(bytes(md5s))
    key = self.put_object(bucket_name, multipart.key_name, b"", storage=multipart.storage,
                          etag=f"{full_etag.hexdigest()}-{len(parts)}", multipart=multipart,
                          encryption=multipart.sse_encryption, kms_key_id=multipart.kms_key_id,
                          disable_notification=True)
    buffers = []
    for part in parts:
        with part.lock:  # the object takes the part's bytes; the part's record keeps none
            buffers.append(part._value_buffer)
            part._value_buffer = tempfile.SpooledTemporaryFile(part._max_buffer_size)
    with key.lock:
        key._value_buffer.close()
        # moto only seeks, tells, reads and closes a key's buffer: a file-like, not a file.
        key._value_buffer = _JoinedParts(buffers)  # type: ignore[assignment]
        key.contentsize = sum(int(part.contentsize) for part in parts)
    del bucket.multiparts[multipart_id]  # moto's MultipartDict disposes of the (emptied) parts
    key.set_metadata(multipart.metadata)
    self.put_object_tagging(key, multipart.tags)
    self.put_object_acl(bucket_name=bucket_name, key_name=key.name, acl=multipart.acl,
                        disable_notification=True)
    notifications.send_event(
        self.account_id,
        notifications.S3NotificationEvent.OBJECT_CREATED_COMPLETE_MULTIPART_UPLOAD_EVENT,
        bucket, bucket.keys.get(multipart.key_name))
    return key


@contextmanager
def s3_objects_on_disk() -> Iterator[None]:
    with mock.patch.object(FakeKey, "value", property(_value, _original_value.fset)), \
            mock.patch.object(S3Response, "get_object", _get_object(S3Response.get_object)), \
            mock.patch.object(S3Response, "_handle_range_header",
                              _handle_range_header(S3Response._handle_range_header)), \
            mock.patch.object(S3Response, "upload_part_copy",
                              _upload_part_copy(S3Response.upload_part_copy)), \
            mock.patch.object(S3Backend, "complete_multipart_upload", _complete_multipart_upload):
        yield
