"""What the Animl web app does through the API, for local tools and tests.

A bulk upload: createUpload (the batch record and a multipart upload of `<batch-id>.zip`),
updateBatch for an overrideSerial, one PUT per part to the presigned URLs, closeUpload. A stop:
stopBatch, which makes the service invoke `IngestDelete-<stage>`. The documents are the real
schema's (the contract tests check them).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import requests

from functions.platform.graphql_client import AnimlApiClient

PART_BYTES = 100 * 1024 * 1024  # the web app's multipart part size
PUT_TIMEOUT_SECONDS = 600

CREATE_UPLOAD = """
mutation CreateUpload($input: CreateUploadInput!) {
  createUpload(input: $input) { batch user multipartUploadId url urls }
}"""

CLOSE_UPLOAD = """
mutation CloseUpload($input: CloseUploadInput!) {
  closeUpload(input: $input) { isOk }
}"""

STOP_BATCH = """
mutation StopBatch($input: StopBatchInput!) {
  stopBatch(input: $input) { isOk }
}"""

REDRIVE_BATCH = """
mutation RedriveBatch($input: RedriveBatchInput!) {
  redriveBatch(input: $input) { isOk }
}"""


def create_batch(api: AnimlApiClient, original_file: str, serial: str | None = None,
                 part_count: int | None = None) -> dict[str, Any]:
    """createUpload, then overrideSerial as the web app sets it; the createUpload payload."""
    input_: dict[str, Any] = {"originalFile": original_file}
    if part_count:
        input_["partCount"] = part_count
    created = api.execute(CREATE_UPLOAD, {"input": input_})["createUpload"]
    if serial:
        api.update_batch(created["batch"], overrideSerial=serial)
    return created


def put_to_presigned_url(created: dict[str, Any], number: int, body: FilePart) -> str:
    """What the browser does with a part: PUT it to its presigned URL; the part's ETag."""
    reply = requests.put(created["urls"][number - 1], data=body, timeout=PUT_TIMEOUT_SECONDS)
    reply.raise_for_status()
    return str(reply.headers["ETag"])


PartWriter = Callable[[dict[str, Any], int, "FilePart"], str]


def upload_batch(api: AnimlApiClient, archive: Path, original_file: str,
                 serial: str | None = None, put_part: PartWriter = put_to_presigned_url) -> str:
    """Create a batch and upload `archive` as its zip in parts, as the browser does; the
    ingestion bucket's notification starts ingest once closeUpload completes it."""
    size = archive.stat().st_size
    part_count = max(1, math.ceil(size / PART_BYTES))
    created = create_batch(api, original_file, serial, part_count)
    parts = []
    with archive.open("rb") as stream:
        for number in range(1, len(created["urls"]) + 1):
            offset = (number - 1) * PART_BYTES
            body = FilePart(stream, offset, min(PART_BYTES, size - offset))
            parts.append({"ETag": put_part(created, number, body), "PartNumber": number})
    api.execute(CLOSE_UPLOAD, {"input": {"batchId": created["batch"],
                                         "multipartUploadId": created["multipartUploadId"],
                                         "parts": parts}})
    return created["batch"]


class FilePart:
    """One part of an open file as a request body, read as it is sent: a part is never held
    whole in memory (nor kept by whatever records the request), and its length is known, as a
    presigned PUT needs."""

    def __init__(self, stream: BinaryIO, offset: int, length: int) -> None:
        self._stream, self._left = stream, length
        self._length = length
        stream.seek(offset)

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size < 0 else min(size, self._left)
        data = self._stream.read(wanted)
        self._left -= len(data)
        return data


def stop_batch(api: AnimlApiClient, batch_id: str) -> None:
    api.execute(STOP_BATCH, {"input": {"batch": batch_id}})


def redrive_batch(api: AnimlApiClient, batch_id: str) -> None:
    api.execute(REDRIVE_BATCH, {"input": {"batch": batch_id}})
