"""Batch errors for executions that ended FAILED, TIMED_OUT or ABORTED.

On AWS an EventBridge rule delivers "Step Functions Execution Status Change" events here; locally
the runtime sends the same shape. Bad archives are already recorded by the state machine's Catch
(their Fail state's error is BAD_ARCHIVE_ERROR), so they are not recorded twice.
"""

from __future__ import annotations

import json
from typing import Any

BAD_ARCHIVE_ERROR = "BadArchive"
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")


def batch_error_for(event: dict[str, Any]) -> tuple[str, str] | None:
    """(batch id, error text) to record for this status-change event, or None."""
    detail = event.get("detail") or {}
    status = detail.get("status")
    if status not in ENDED_BADLY or detail.get("error") == BAD_ARCHIVE_ERROR:
        return None
    try:
        batch_id = json.loads(detail.get("input") or "{}").get("batchId")
    except ValueError:
        batch_id = None
    batch_id = batch_id or detail.get("name")
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
