"""What an object arriving in the ingestion bucket is, and starting its batch."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from functions.image.ingest_image import Services
from functions.image.single_image import ingest_single_image
from functions.platform import logs, reasons

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


def batch_id_from_key(key: str) -> str | None:
    """`batch-<uuid>.zip` at the bucket's root, as the web app uploads it."""
    match = _BATCH_ID.match(key)
    return match.group(1) if match else None


def start_batch_execution(sfn: Any, state_machine_arn: str, batch_id: str, bucket: str, key: str
                          ) -> str | None:
    """Start IngestBatch named after the batch; a repeated event for it is a no-op.

    Returns the execution ARN; None when the batch's execution already ended (the name is
    taken). While it still runs, Step Functions itself answers with the same execution.
    """
    execution_input = {"batchId": batch_id, "archive": {"Bucket": bucket, "Key": key}}
    try:
        started = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=batch_id, input=json.dumps(execution_input)
        )
    except sfn.exceptions.ExecutionAlreadyExists:
        logger.info("batch %s already has an execution; repeated event ignored", batch_id)
        return None
    return started["executionArn"]


def receive_upload(services: Callable[[], Services], sfn: Any,
                   state_machine_arn: Callable[[], str], bucket: str, key: str) -> str:
    """An object arrived: a batch archive starts its execution, an image is ingested, anything
    else is left alone. Returns what happened, for the log. (`services` is called for an image
    only, the machine's ARN for an archive only: each needs what the other does not.)"""
    kind = classify_upload(key)
    if kind == IGNORED:
        return f"ignored upload {key}: not a .zip or an image"
    if kind == SINGLE_IMAGE:
        outcome = ingest_single_image(services(), bucket, key)
        return f"image {key}: {outcome.outcome if outcome else 'parked or gone'}"
    batch_id = batch_id_from_key(key)
    if batch_id is None:
        return f"ignored archive {key}: not named <batch-id>.zip"
    started = start_batch_execution(sfn, state_machine_arn(), batch_id, bucket, key)
    return f"batch {batch_id}: " + ("started" if started else "already ran")
