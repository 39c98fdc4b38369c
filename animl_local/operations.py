"""What operators do to batches from the command line, on AWS and on the embedded engine alike:
inspect executions, re-drive a failed batch, reprocess dead-lettered images, replay parked ones.

Every function takes its clients explicitly, so the same code runs against AWS and moto.
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
from typing import Any

from functions.batch import batch_record
from functions.batch.uploads import UPLOAD_SUFFIX
from functions.image.ingest_image import DEAD_LETTER, INGESTED, ImageSource, Services, ingest_image
from functions.platform import storage
from functions.platform.settings import Settings

logger = logging.getLogger(__name__)

REDRIVE_SUFFIX = "-redrive-"


class NoSuchBatch(LookupError):
    """The batch has no execution on the stage."""


def no_such_batch(settings: Settings, batch_id: str) -> NoSuchBatch:
    return NoSuchBatch(f"batch {batch_id} has no execution on stage {settings.stage}")


def batch_executions(sfn: Any, state_machine_arn: str, batch_id: str) -> list[dict[str, Any]]:
    """The batch's executions, first run first (re-drives are named `<batch>-redrive-<n>`,
    later uploads under the same batch id `<batch>-upload-<ETag>`)."""
    return [e for e in list_executions(sfn, state_machine_arn)
            if e["name"] == batch_id
            or e["name"].startswith((batch_id + REDRIVE_SUFFIX, batch_id + UPLOAD_SUFFIX))][::-1]


def existing_batch_executions(sfn: Any, settings: Settings, account: str, batch_id: str
                              ) -> list[dict[str, Any]]:
    """The batch's executions (as `batch_executions`); NoSuchBatch when the stage has none."""
    runs = batch_executions(sfn, settings.state_machine_arn(account), batch_id)
    if not runs:
        raise no_such_batch(settings, batch_id)
    return runs


def list_executions(sfn: Any, state_machine_arn: str, status: str | None = None
                    ) -> list[dict[str, Any]]:
    """Newest first, as the console lists them."""
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    pages = sfn.get_paginator("list_executions").paginate(**kwargs)
    return [execution for page in pages for execution in page["executions"]]


def execution_history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    pages = sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
    return [event for page in pages for event in page["events"]]


def map_runs(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """Every Distributed Map run of the execution, described."""
    return [sfn.describe_map_run(mapRunArn=run["mapRunArn"])
            for run in sfn.list_map_runs(executionArn=arn)["mapRuns"]]


def timeline(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per state entered: when, how long, and how it ended."""
    rows: list[dict[str, Any]] = []
    open_rows: dict[str, dict[str, Any]] = {}
    for event in history:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            row = {"state": name, "type": kind.removesuffix("StateEntered"),
                   "entered": event["timestamp"], "exited": None, "status": "RUNNING"}
            rows.append(row)
            open_rows[name] = row
        elif kind.endswith("StateExited"):
            exited = open_rows.pop(event["stateExitedEventDetails"]["name"], None)
            if exited:
                exited.update(exited=event["timestamp"], status="SUCCEEDED")
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            details: dict[str, Any] = next(
                (v for k, v in event.items() if k.endswith("EventDetails")), {})
            for row in open_rows.values():
                row.update(status=kind.removeprefix("Execution").upper(),
                           error=details.get("error"), cause=details.get("cause"))
    for row in rows:
        if row["exited"] is not None and hasattr(row["entered"], "timestamp"):
            row["seconds"] = round((row["exited"] - row["entered"]).total_seconds(), 3)
    return rows


def describe_batch(sfn: Any, s3: Any, settings: Settings, account: str, batch_id: str
                   ) -> dict[str, Any]:
    """The batch's latest execution, its failed state, its map runs, and what ingest has set
    on the batch (its own record: the API offers no read of a batch)."""
    runs = batch_executions(sfn, settings.state_machine_arn(account), batch_id)
    arn = runs[-1]["executionArn"] if runs else settings.execution_arn(account, batch_id)
    try:
        description = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist:
        raise no_such_batch(settings, batch_id) from None
    history = execution_history(sfn, arn)
    rows = timeline(history)
    failed = next((r for r in rows if r["status"] not in ("SUCCEEDED", "RUNNING")), None)
    return {
        "execution": {k: description.get(k) for k in (
            "executionArn", "name", "status", "startDate", "stopDate", "error", "cause")},
        "executions": [e["name"] for e in runs],
        "failedState": failed,
        "timeline": rows,
        "mapRuns": [{"mapRunArn": m["mapRunArn"], "status": m["status"],
                     "items": m["itemCounts"], "executions": m["executionCounts"]}
                    for m in map_runs(sfn, arn)],
        "batch": batch_record.read_batch_record(s3, settings, batch_id),
    }


def redrive(sfn: Any, settings: Settings, account: str, batch_id: str) -> dict[str, Any]:
    """RedriveExecution: the batch's latest execution resumes at the state that failed (on AWS
    and on the embedded engine alike), so a batch whose archive is already deleted completes.

    Only an execution Step Functions calls NOT_REDRIVABLE (older than its redrive window, or
    redriven too often) is started anew: it re-reads the archive; groups whose outcomes are
    stored are not worked again and every image is idempotent, so nothing is recorded twice.
    """
    runs = existing_batch_executions(sfn, settings, account, batch_id)
    latest = sfn.describe_execution(executionArn=runs[-1]["executionArn"])
    if latest["status"] in ("RUNNING", "SUCCEEDED"):
        raise ValueError(f"batch {batch_id}'s execution is {latest['status']}: nothing to re-drive")
    if latest.get("redriveStatus") == "REDRIVABLE":
        sfn.redrive_execution(executionArn=latest["executionArn"])
        return {"mode": "RedriveExecution", "executionArn": latest["executionArn"],
                "name": latest["name"]}
    logger.info("execution %s is not redrivable (%s); starting a new execution",
                latest["executionArn"], latest.get("redriveStatusReason"))
    name = f"{batch_id}{REDRIVE_SUFFIX}{len(runs)}"
    started = sfn.start_execution(stateMachineArn=settings.state_machine_arn(account), name=name,
                                  input=latest["input"])
    return {"mode": "NewExecution", "executionArn": started["executionArn"], "name": name}


class NoSuchReason(LookupError):
    """No dead-lettered image of the batch has the reason asked for."""

    def __init__(self, batch_id: str, reason: str, present: list[str]) -> None:
        listed = ", ".join(f'"{r}"' for r in present) if present else "none"
        super().__init__(f'no image of batch {batch_id} is dead-lettered for "{reason}"; the '
                         f"reasons present: {listed}")
        self.present = present


def dead_letter_reasons(report: dict[str, Any]) -> list[str]:
    """The reasons the report's dead-lettered images have, each once, sorted."""
    return sorted({row["reason"] for row in report["images"] if row["outcome"] == DEAD_LETTER})


def reprocess(services: Services, batch_id: str, reason: str | None = None,
              serial: str | None = None) -> dict[str, int]:
    """Ingest the batch's dead-lettered images again; each one ingested leaves dead-letter.

    Works from the report's rows only: each row's own dead-letter object (its `keys`), its
    source's `origin` and path. A row whose object is gone, or whose object is not the bytes
    the row recorded (md5), is counted and left as it is: nothing is guessed by name.

    `serial` becomes the batch's `overrideSerial` (as the web app sets it) before anything is
    ingested: the API then uses it in place of each image's own serial number. A `reason` no
    dead-lettered image has raises NoSuchReason (naming those present), changing nothing.
    """
    settings = services.settings
    report_key = storage.report_key(batch_id)
    report = storage.get_json(services.s3, settings.batch_work_bucket, report_key)
    if reason and reason not in dead_letter_reasons(report):
        raise NoSuchReason(batch_id, reason, dead_letter_reasons(report))
    if serial:
        services.api.update_batch(batch_id, overrideSerial=serial)
    counts = {"reprocessed": 0, "ingested": 0, "stillDeadLettered": 0, "unavailable": 0}
    for index, row in enumerate(report["images"]):
        if row["outcome"] != DEAD_LETTER or (reason and row["reason"] != reason):
            continue
        data = _dead_lettered_bytes(services, row)
        if data is None:
            counts["unavailable"] += 1
            continue
        outcome = ingest_image(data, _source_of(row, batch_id), services)
        counts["reprocessed"] += 1
        counts["ingested" if outcome.outcome == INGESTED else "stillDeadLettered"] += 1
        # The old objects go once the new outcome holds the bytes (serving, or a new key).
        for key in set(row["keys"]) - set(outcome.keys):
            services.s3.delete_object(Bucket=settings.dead_letter_bucket, Key=key)
        report["images"][index] = outcome.to_dict()
    storage.put_json(services.s3, settings.batch_work_bucket, report_key, report)
    return counts


def _dead_lettered_bytes(services: Services, row: dict[str, Any]) -> bytes | None:
    """The row's own dead-letter object, if it is still there and holds the row's bytes."""
    if not row.get("keys"):
        return None
    try:
        data: bytes = services.s3.get_object(Bucket=services.settings.dead_letter_bucket,
                                             Key=row["keys"][0])["Body"].read()
    except services.s3.exceptions.NoSuchKey:
        logger.warning("dead-letter object of %s is gone", row["path"])
        return None
    recorded = (row.get("md") or {}).get("Hash")
    if recorded and hashlib.md5(data).hexdigest() != recorded:
        logger.warning("dead-letter object of %s holds other bytes than it recorded", row["path"])
        return None
    return data


def _source_of(row: dict[str, Any], batch_id: str) -> ImageSource:
    """The source as the row recorded it (its origin keeps new dead-letter keys its own)."""
    md = row.get("md") or {}
    return ImageSource(file_name=posixpath.basename(row["path"]), bucket=md.get("Bucket", ""),
                       key=md.get("Key", ""), batch_id=batch_id, path=row["path"],
                       origin=row.get("origin"))


def replay_parking_lot(s3: Any, settings: Settings) -> int:
    """Move every parked image back into the ingestion bucket (which ingests it), in order."""
    moved = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=settings.parking_lot_bucket):
        for obj in page.get("Contents", []):
            # Get and put (single images are small): the put is what notifies the entry Lambda.
            body = s3.get_object(Bucket=settings.parking_lot_bucket, Key=obj["Key"])["Body"]
            s3.put_object(Bucket=settings.ingestion_bucket, Key=obj["Key"], Body=body.read())
            s3.delete_object(Bucket=settings.parking_lot_bucket, Key=obj["Key"])
            moved += 1
    return moved


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
