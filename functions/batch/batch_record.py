"""Ingest's own record of what it has set on a batch.

The Animl API hands an API-key caller no batch to read (there is no `batch(_id)` query, and
`batches` lists a signed-in user's project), so ingest remembers what it sent: the status
timestamps, `total`, and the batch errors it recorded. The record lives beside the manifest in the
batch work bucket. A status timestamp keeps its first value across retries and re-drives.
"""

from __future__ import annotations

from typing import Any

from functions.batch import execution_events
from functions.platform import storage
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.settings import Settings

TIMESTAMP_FIELDS = ("uploadComplete", "processingStart", "ingestionComplete", "processingEnd")


def read_batch_record(s3: Any, settings: Settings, batch_id: str) -> dict[str, Any]:
    """What ingest has set on the batch so far (`{"_id": id}` before anything was set)."""
    try:
        return storage.get_json(s3, settings.batch_work_bucket, storage.batch_record_key(batch_id))
    except s3.exceptions.NoSuchKey:
        return {"_id": batch_id}


def _write_batch_record(s3: Any, settings: Settings, record: dict[str, Any]) -> None:
    storage.put_json(s3, settings.batch_work_bucket, storage.batch_record_key(record["_id"]),
                     record)


def mark_batch(api: AnimlApiClient, s3: Any, settings: Settings, batch_id: str,
               **fields: Any) -> dict[str, Any]:
    """Copy fields onto the batch with updateBatch; a timestamp already set keeps its value.

    The record is written before the call, so a retry after a failed call sends the same first
    values again (updateBatch with the same values changes nothing).
    """
    record = read_batch_record(s3, settings, batch_id)
    chosen = {name: record[name] if name in TIMESTAMP_FIELDS and record.get(name) else value
              for name, value in fields.items()}
    if any(record.get(name) != value for name, value in chosen.items()):
        record = {**record, **chosen}
        _write_batch_record(s3, settings, record)
    batch = api.update_batch(batch_id, **chosen)
    if batch.get("projectId") and not record.get("projectId"):
        # The batch's project: where a retried group looks for images it saved already.
        record = {**record, "projectId": batch["projectId"]}
        _write_batch_record(s3, settings, record)
    return record


def record_batch_error(api: AnimlApiClient, s3: Any, settings: Settings, batch_id: str,
                       error: str) -> dict[str, Any]:
    """createBatchError once per error text (status-change events arrive at least once)."""
    record = read_batch_record(s3, settings, batch_id)
    errors = record.get("errors") or []
    if error in errors:
        return record
    api.create_batch_error(batch_id, error)
    record = {**record, "errors": [*errors, error]}
    _write_batch_record(s3, settings, record)
    return record


def record_execution_failure(api: AnimlApiClient, s3: Any, settings: Settings, batch_id: str,
                             error: str) -> dict[str, Any]:
    """An execution of the batch ended badly: its batch error, remembered as an execution's
    failure, which a later execution that completes the batch resolves."""
    record = record_batch_error(api, s3, settings, batch_id, error)
    failures = record.get("executionFailures") or []
    if error in failures:
        return record
    record = {**record, "executionFailures": [*failures, error]}
    _write_batch_record(s3, settings, record)
    return record


def resolve_execution_failures(s3: Any, settings: Settings, batch_id: str, at: str
                               ) -> dict[str, Any]:
    """The batch was completed (a re-drive succeeded): its earlier executions' failures are
    marked resolved, with when. The API keeps its BatchErrors (it offers no way to resolve one
    error); ingest's record, and the reports made from it, say the batch recovered."""
    record = read_batch_record(s3, settings, batch_id)
    resolved = record.get("resolvedErrors") or []
    done = {r["error"] for r in resolved}
    new = [{"error": e, "resolvedAt": at} for e in record.get("executionFailures") or []
           if e not in done]
    if new:
        record = {**record, "resolvedErrors": [*resolved, *new]}
        _write_batch_record(s3, settings, record)
    return record


def batch_ended(record: dict[str, Any]) -> bool:
    return bool(record.get("processingEnd"))


def record_caught_error(api: AnimlApiClient, s3: Any, settings: Settings, batch_id: str,
                        error: dict[str, Any]) -> dict[str, Any]:
    """A Catch's `{"Error", "Cause"}` as the batch's error (the cause's message only)."""
    return record_batch_error(api, s3, settings, batch_id,
                              execution_events.cause_message(error.get("Cause")))
