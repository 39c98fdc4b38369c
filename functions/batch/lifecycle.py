"""Ending batches from outside their execution: an operator's stop, and the hourly sweep."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from functions.batch import batch_record, batch_steps, execution_events, inference
from functions.batch.execution_events import MAP_RUN_FAILED, STOPPED_ON_REQUEST
from functions.platform import logs
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.settings import Settings

logger = logs.get_logger(__name__)

STOP_CAUSE = "Stopped on request (stopBatch)"
SWEEP_CAUSE = "Swept: inference resources older than the sweep age"


def execution_status(sfn: Any, arn: str) -> str | None:
    try:
        return sfn.describe_execution(executionArn=arn)["status"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return None


def stop_batch(sfn: Any, clients: inference.Clients, api: AnimlApiClient, s3: Any,
               settings: Settings, account: str, batch_id: str, now: datetime) -> dict[str, Any]:
    """Stop the batch's execution if it runs, release its resources, set processingEnd."""
    arn = settings.execution_arn(account, batch_id)
    # processingEnd first: the abort's status-change event then reads as the requested end.
    batch_record.mark_batch(api, s3, settings, batch_id, processingEnd=now.isoformat())
    stopped = execution_status(sfn, arn) == "RUNNING"
    if stopped:
        sfn.stop_execution(executionArn=arn, error=STOPPED_ON_REQUEST, cause=STOP_CAUSE)
    released = inference.teardown_inference(clients, settings, batch_id)
    return {"batch": batch_id, "executionStopped": stopped, "released": released}


def sweep(sfn: Any, clients: inference.Clients, api: AnimlApiClient, s3: Any,
          settings: Settings, account: str, now: datetime) -> list[str]:
    """Release resources older than the sweep age whose batch has no running execution.

    Messages in a batch's queues are never destroyed while an operator could still re-drive
    them (redriveBatch): resources go only when both queues are empty, or once the dead-letter
    queue's retention period has passed since the queues were made.
    """
    too_old = now - timedelta(seconds=settings.sweep_max_age_seconds)
    swept = []
    for batch_id, created in sorted(inference.batches_with_resources(clients, settings).items()):
        if created > too_old:
            continue
        if execution_status(sfn, settings.execution_arn(account, batch_id)) == "RUNNING":
            continue
        if not inference.may_release(clients, settings, batch_id, created, now):
            continue
        inference.teardown_inference(clients, settings, batch_id)
        try:
            batch_record.mark_batch(api, s3, settings, batch_id, processingEnd=now.isoformat())
        except Exception as exc:  # the resources are released either way
            logger.warning("swept %s but could not set processingEnd: %s", batch_id, exc)
        swept.append(batch_id)
    return swept


def end_inference(clients: inference.Clients, api: AnimlApiClient, s3: Any, settings: Settings,
                  batch_id: str, check: dict[str, Any] | None) -> dict[str, int]:
    """Release the batch's queues and mapping; when the wait timed out, record why first."""
    if check and check.get("timedOut"):
        batch_record.record_batch_error(api, s3, settings, batch_id,
                                        inference.timeout_message(check, settings))
    return inference.teardown_inference(clients, settings, batch_id)


def record_bad_end(api: AnimlApiClient, s3: Any, settings: Settings,
                   event: dict[str, Any]) -> str | None:
    """An IngestBatch execution ended FAILED, TIMED_OUT or ABORTED: record it on the batch,
    unless it is another machine's, already recorded, or a requested end. Returns the batch."""
    detail = event.get("detail") or {}
    if not str(detail.get("stateMachineArn", "")).endswith(settings.state_machine_name):
        return None
    batch_id = execution_events.batch_id_of(event)
    record = batch_record.read_batch_record(s3, settings, batch_id) if batch_id else {}
    found = execution_events.batch_error_for(event,
                                             batch_ended=batch_record.batch_ended(record))
    if not found:
        return None
    batch_id, message = found
    if detail.get("error") == MAP_RUN_FAILED:
        message = _map_run_failure(s3, settings, batch_id, message)
    batch_record.record_execution_failure(api, s3, settings, batch_id, message)
    return batch_id


def _map_run_failure(s3: Any, settings: Settings, batch_id: str, message: str) -> str:
    """A failed Map run's batch error: how many images in how many groups have no outcome
    (what the operator needs; the Map's own error names no image), the Map's error after it."""
    missing = batch_steps.missing_outcomes(s3, settings, batch_id)
    if missing is None:
        return message
    return f"Ingest failed: {missing} ({MAP_RUN_FAILED})"
