"""What an object arriving in the ingestion bucket is, and starting its batch."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from functions.platform import reasons

logger = logging.getLogger(__name__)

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
