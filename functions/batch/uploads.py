"""What an object arriving in the ingestion bucket is, and starting its batch."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from functions.image.ingest_image import Services
from functions.image.single_image import ingest_single_image
from functions.platform import logs, reasons
from functions.platform.settings import execution_arn_of

logger = logs.get_logger(__name__)

BATCH_ARCHIVE = "batch-archive"
SINGLE_IMAGE = "single-image"
IGNORED = "ignored"

_BATCH_ID = re.compile(r"^(batch-[0-9a-fA-F-]{36})\.zip$")


def classify_upload(key: str) -> str:
    """Dispatch by extension, in any letter case."""
    lowered = key.lower()
    if lowered.endswith(".zip"):
        return BATCH_ARCHIVE
    if reasons.is_image_name(lowered):
        return SINGLE_IMAGE
    return IGNORED


def event_etag(event: dict[str, Any]) -> str | None:
    """The object's ETag in an S3 event record (ObjectCreated events carry it)."""
    records = event.get("Records") or [{}]
    return ((records[0].get("s3") or {}).get("object") or {}).get("eTag")


def batch_id_from_key(key: str) -> str | None:
    """`batch-<uuid>.zip` at the bucket's root, as the web app uploads it."""
    match = _BATCH_ID.match(key)
    return match.group(1) if match else None


# A later upload under a batch id that already has an execution: `<batch>-upload-<its ETag>`.
UPLOAD_SUFFIX = "-upload-"
_ETAG_IN_NAME = 24  # hex digits: the name stays within Step Functions' 80 characters


def upload_execution_name(batch_id: str, etag: str) -> str:
    tag = re.sub(r"[^0-9A-Za-z]", "", etag)[:_ETAG_IN_NAME]
    return f"{batch_id}{UPLOAD_SUFFIX}{tag}"


def start_batch_execution(sfn: Any, state_machine_arn: str, batch_id: str, bucket: str, key: str,
                          etag: str | None = None) -> str | None:
    """Start IngestBatch for this upload of the batch; a repeated event for it is a no-op.

    The first upload's execution is named after the batch. S3 delivers an event at least once:
    the same upload (same ETag) again starts nothing (while its execution runs, Step Functions
    answers the same name and input with the same execution; after, the name is taken). Another
    upload under the same batch id (another ETag) gets an execution of its own, named
    `<batch>-upload-<ETag>`, so it is ingested too. Returns the execution ARN; None for a
    repeated event of an execution that already ended.
    """
    archive = {"Bucket": bucket, "Key": key, **({"ETag": etag} if etag else {})}
    execution_input = json.dumps({"batchId": batch_id, "archive": archive})
    started = _start(sfn, state_machine_arn, batch_id, execution_input)
    if started or not etag:
        return started
    first = sfn.describe_execution(executionArn=execution_arn_of(state_machine_arn, batch_id))
    if _etag_of(first) == etag.strip('"'):
        logger.info("batch %s: upload %s already has its execution", batch_id, etag)
        return None
    return _start(sfn, state_machine_arn, upload_execution_name(batch_id, etag), execution_input)


def _start(sfn: Any, state_machine_arn: str, name: str, execution_input: str) -> str | None:
    try:
        started = sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                                      input=execution_input)
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("execution %s already exists; repeated event ignored", name)
        return None
    return str(started["executionArn"])


def _etag_of(execution: dict[str, Any]) -> str | None:
    """The ETag of the upload an execution ingests (none for executions started without one)."""
    etag = (json.loads(execution.get("input") or "{}").get("archive") or {}).get("ETag")
    return etag.strip('"') if etag else None


def receive_upload(services: Callable[[], Services], sfn: Any,
                   state_machine_arn: Callable[[], str], bucket: str, key: str,
                   etag: str | None = None) -> str:
    """An object arrived: a batch archive starts its execution, an image is ingested, anything
    else is left alone. Returns what happened, for the log. (`services` is called for an image
    only, the machine's ARN for an archive only: each needs what the other does not.) `etag`:
    the object's, from the event record: which upload of the key this is."""
    kind = classify_upload(key)
    if kind == IGNORED:
        return f"ignored upload {key}: not a .zip or an image"
    if kind == SINGLE_IMAGE:
        outcome = ingest_single_image(services(), bucket, key)
        return f"image {key}: {outcome.outcome if outcome else 'parked or gone'}"
    batch_id = batch_id_from_key(key)
    if batch_id is None:
        return f"ignored archive {key}: not named <batch-id>.zip"
    started = start_batch_execution(sfn, state_machine_arn(), batch_id, bucket, key, etag)
    return f"batch {batch_id}: " + ("started" if started else "already ran")
