"""Batch errors for executions that ended FAILED, TIMED_OUT or ABORTED.

On AWS an EventBridge rule delivers "Step Functions Execution Status Change" events here; locally
the runtime sends the same shape. Bad archives are already recorded by the state machine's Catch
(their Fail state's error is BAD_ARCHIVE_ERROR), so they are not recorded twice.
"""

from __future__ import annotations

import json
from typing import Any

BAD_ARCHIVE_ERROR = "BadArchive"
STOPPED_ON_REQUEST = "BatchStopped"  # the error stopBatch stops an execution with
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")
# A Distributed Map run's error when a child execution failed (no failure is tolerated): it
# names no image, so the batch error says what the groups left undone instead.
MAP_RUN_FAILED = "States.ExceedToleratedFailureThreshold"


def batch_id_of(event: dict[str, Any]) -> str | None:
    detail = event.get("detail") or {}
    try:
        batch_id = json.loads(detail.get("input") or "{}").get("batchId")
    except ValueError:
        batch_id = None
    return batch_id or detail.get("name")


def batch_error_for(event: dict[str, Any], batch_ended: bool = False) -> tuple[str, str] | None:
    """(batch id, error text) to record for this status-change event, or None.

    `batch_ended`: the batch already has processingEnd, as after stopBatch; its abort is the
    requested end, not an error.
    """
    detail = event.get("detail") or {}
    status = detail.get("status")
    if status not in ENDED_BADLY or detail.get("error") in (BAD_ARCHIVE_ERROR, STOPPED_ON_REQUEST):
        return None
    if status == "ABORTED" and batch_ended:
        return None
    batch_id = batch_id_of(event)
    if not batch_id:
        return None
    what = detail.get("error") or status
    cause = cause_message(detail.get("cause"))
    return batch_id, f"Ingest {status.lower().replace('_', ' ')}: {what}" + (
        f": {cause}" if cause else ""
    )


def cause_message(cause: Any) -> str:
    """Lambda causes are JSON error payloads; keep the message only."""
    if not cause:
        return ""
    try:
        parsed = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)[:500]
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("Cause") or parsed)[:500]
    return str(parsed)[:500]
