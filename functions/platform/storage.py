"""Where images go: serving keys, dead-letter keys and the batch work area, in one place."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from functions.platform import aws_limits, reasons

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
RENDITIONS = ("original", "medium", "small")


def serving_key(image_id: str, rendition: str, extension: str) -> str:
    return f"{rendition}/{image_id}-{rendition}.{extension}"


SHORTENED_MARK = "~"  # between the hash and the kept tail of a shortened name


def entry_origin(batch_id: str, entry_offset: int) -> str:
    """Where a batch entry came from: its batch, and the offset of its local header in the
    archive. The offset tells apart entries with the same name (or names that clean to the same
    path) and needs no read of the bytes (an entry dead-lettered by server-side copy is never
    read, so a hash of its bytes is not at hand); it is the same on every retry of the batch."""
    return f"{batch_id}/{entry_offset}"


def single_origin(md5_hex: str) -> str:
    """Where a single (wireless) image came from: its bytes' md5, the ETag S3 gives a
    single-part upload. Two cameras' IMG_0001.JPG get two objects; a redelivered event
    for the same object gets the same one."""
    return f"single/{md5_hex}"


def dead_letter_key(reason: str, image_id: str | None, origin: str, file_name: str) -> str:
    """`<REASON>/<id>/<origin>/<file name>`: the contract's `<REASON>/<id>/<file name>` (id
    UNKNOWN_ID when none is known) with the source's origin between, so that no two sources
    ever share an object. Fitted to S3's key limit."""
    return fit_key(f"{_key_segment(reason)}/{image_id or reasons.UNKNOWN_ID}/{origin}", file_name)


def rejected_key(reason: str, origin: str, path: str) -> str:
    """Files refused before the API saw them: `<REASON>/<origin>/<path>`."""
    return fit_key(f"{_key_segment(reason)}/{origin}", path)


def fit_key(prefix: str, name: str) -> str:
    """`prefix/name`, within S3's key limit: a name too long for it keeps its tail (the file
    name and extension) behind a hash of the whole name, so the shortened key is the same on
    every run and no two names share it. The full name stays in the outcome row."""
    key = f"{prefix}/{name}"
    if aws_limits.utf8_size(key) <= aws_limits.S3_KEY.max_bytes:
        return key
    room = aws_limits.S3_KEY.max_bytes - aws_limits.utf8_size(prefix) - 1
    return f"{prefix}/{shorten(name, room)}"


def shorten(text: str, max_bytes: int) -> str:
    """`text` if it fits in `max_bytes` of UTF-8, else `<hash>~<tail of text>` that fits."""
    if aws_limits.utf8_size(text) <= max_bytes:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    room = max_bytes - len(digest) - len(SHORTENED_MARK)
    if room < 0:
        raise ValueError(f"no room for a shortened name in {max_bytes} bytes")
    tail = text.encode("utf-8", "surrogatepass")[-room:] if room else b""
    # Cut at a character boundary: drop continuation bytes left at the front.
    return digest + SHORTENED_MARK + tail.decode("utf-8", "ignore").lstrip("/")


def manifest_key(batch_id: str) -> str:
    return f"batches/{batch_id}/manifest.json"


def inspection_key(batch_id: str) -> str:
    return f"batches/{batch_id}/inspection.json"


def outcomes_prefix(batch_id: str) -> str:
    return f"batches/{batch_id}/outcomes/"


def outcomes_key(batch_id: str, group: int) -> str:
    return f"{outcomes_prefix(batch_id)}{group:07d}.json"


def attempt_key(batch_id: str, group: int) -> str:
    """Marks a group as begun: a later attempt of it may find its images saved already."""
    return f"batches/{batch_id}/attempts/{group:07d}"


def entry_outcomes_prefix(batch_id: str, group: int) -> str:
    """Where a group keeps each entry's outcome as it finishes (a retry redoes only the rest)."""
    return f"batches/{batch_id}/entry-outcomes/{group:07d}/"


def entry_outcome_key(batch_id: str, group: int, index: int) -> str:
    return f"{entry_outcomes_prefix(batch_id, group)}{index:05d}.json"


def report_key(batch_id: str) -> str:
    return f"batches/{batch_id}/report.json"


def batch_record_key(batch_id: str) -> str:
    return f"batches/{batch_id}/batch-record.json"


MAX_COPY_PART = 5 * 1024**3  # S3's largest part


def copy_range(s3: Any, source_bucket: str, source_key: str, start: int, length: int,
               bucket: str, key: str, source_etag: str | None = None) -> None:
    """Copy bytes [start, start+length) of one object into another, server-side (no download).

    `source_etag` pins the source: S3 refuses the copy (412 PreconditionFailed) if the object
    has changed since.
    """
    pinned = {"CopySourceIfMatch": source_etag} if source_etag else {}
    if length <= 0:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
        return
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    parts = []
    try:
        for number, offset in enumerate(range(start, start + length, MAX_COPY_PART), start=1):
            end = min(offset + MAX_COPY_PART, start + length) - 1
            copied = s3.upload_part_copy(
                Bucket=bucket, Key=key, UploadId=upload, PartNumber=number,
                CopySource={"Bucket": source_bucket, "Key": source_key},
                CopySourceRange=f"bytes={offset}-{end}", **pinned,
            )
            parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
        s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload,
                                     MultipartUpload={"Parts": parts})
    except Exception:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
        raise


def put_json(s3: Any, bucket: str, key: str, value: Any) -> None:
    body = json.dumps(value, separators=(",", ":"), default=str).encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_json(s3: Any, bucket: str, key: str) -> Any:
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


MAX_REASON_BYTES = 200  # an API message as a folder name: leave the key's room to the name


def _key_segment(text: str) -> str:
    # An API message becomes a folder name: keep it one segment, and short.
    return shorten(text.replace("/", "_").strip() or "UNKNOWN_ERROR", MAX_REASON_BYTES)
