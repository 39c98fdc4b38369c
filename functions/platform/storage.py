"""Where images go: serving keys, dead-letter keys and the batch work area, in one place."""

from __future__ import annotations

import json
from typing import Any

CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png"}
RENDITIONS = ("original", "medium", "small")


def serving_key(image_id: str, rendition: str, extension: str) -> str:
    return f"{rendition}/{image_id}-{rendition}.{extension}"


def dead_letter_key(reason: str, image_id: str | None, file_name: str) -> str:
    """`<REASON>/<id>/<file name>` as the contract gives it (UNKNOWN_ID when no id is known)."""
    return f"{_key_segment(reason)}/{image_id or 'UNKNOWN_ID'}/{file_name}"


def rejected_key(reason: str, batch_id: str | None, path: str) -> str:
    """Files refused before the API saw them: keyed by batch and path, so none collide."""
    return f"{reason}/{batch_id or 'single'}/{path}"


def manifest_key(batch_id: str) -> str:
    return f"batches/{batch_id}/manifest.json"


def inspection_key(batch_id: str) -> str:
    return f"batches/{batch_id}/inspection.json"


def outcomes_prefix(batch_id: str) -> str:
    return f"batches/{batch_id}/outcomes/"


def outcomes_key(batch_id: str, group: int) -> str:
    return f"{outcomes_prefix(batch_id)}{group:07d}.json"


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


def _key_segment(text: str) -> str:
    # An API message becomes a folder name: keep it one segment.
    return text.replace("/", "_").strip() or "UNKNOWN_ERROR"
