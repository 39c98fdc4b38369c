"""Lambda handlers. Each turns its event into arguments and calls a plain function in `functions`.

Registered on a Blueprint so the root `app.py` stays a shim and handler strings name this module.
Errors raised here reach Step Functions as the exception's class name (`BadArchive`,
`AnimlApiUnavailable`, ...), which is what the ASL's Retry and Catch match on.
"""

from __future__ import annotations

import functools
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from typing import Any

from chalice import Blueprint

from functions.batch import (
    batch_record,
    batch_steps,
    execution_events,
    inference,
    lifecycle,
    uploads,
)
from functions.image.ingest_image import Services
from functions.image.single_image import ingest_single_image
from functions.platform.runtime import Runtime, account_of, runtime
from functions.platform.settings import Settings

logger = logging.getLogger("animl_ingest")
logger.setLevel(logging.INFO)

blueprint = Blueprint(__name__)

# Read at import because Chalice needs the bucket name when it builds the notification; the
# stage's config.json sets INGESTION_BUCKET for deploy and runtime alike.
INGESTION_BUCKET = os.environ.get("INGESTION_BUCKET", Settings(stage="dev").ingestion_bucket)


def _services(rt: Runtime) -> Services:
    return Services(s3=rt.client("s3"), api=rt.api(), settings=rt.settings,
                    image_pool=_image_pool(rt.settings.image_worker_processes))


def _inference_clients(rt: Runtime) -> inference.Clients:
    return inference.Clients(sqs=rt.client("sqs"), lambda_=rt.client("lambda"))


@functools.cache
def _image_pool(processes: int) -> ProcessPoolExecutor | None:
    """One pool per process, kept like a warm container's clients ("spawn": the local engine
    forks from a process full of threads otherwise)."""
    if processes <= 0:
        return None
    return ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"))


@blueprint.on_s3_event(bucket=INGESTION_BUCKET, events=["s3:ObjectCreated:*"], name="on_upload")
def on_upload(event: Any) -> None:
    """Entry point: a zip starts its batch, an image is ingested, anything else is ignored."""
    kind = uploads.classify_upload(event.key)
    if kind == uploads.IGNORED:
        logger.info("ignored upload %s: not a .zip or an image", event.key)
        return
    ctx = runtime()
    if kind == uploads.SINGLE_IMAGE:
        outcome = ingest_single_image(_services(ctx), event.bucket, event.key)
        logger.info("image %s: %s", event.key, outcome and outcome.outcome or "parked or gone")
        return
    batch_id = uploads.batch_id_from_key(event.key)
    if batch_id is None:
        logger.info("ignored archive %s: not named <batch-id>.zip", event.key)
        return
    account = account_of(event.context)
    uploads.start_batch_execution(
        ctx.client("stepfunctions"), ctx.settings.state_machine_arn(account), batch_id,
        event.bucket, event.key,
    )


@blueprint.lambda_function(name="inspect_archive")
def inspect_archive(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = runtime()
    archive = event["archive"]
    return batch_steps.inspect_batch_archive(
        ctx.client("s3"), ctx.settings, event["batchId"], archive["Bucket"], archive["Key"]
    )


@blueprint.lambda_function(name="update_batch_status")
def update_batch_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"batchId", "field", "at"[, "total"]}`: stamp one status field on the batch record."""
    ctx = runtime()
    api, s3 = ctx.api(), ctx.client("s3")
    if event["field"] == "uploadComplete":
        return batch_steps.mark_upload_complete(api, s3, ctx.settings, event["batchId"],
                                                event["total"], event["at"])
    return batch_record.mark_batch(api, s3, ctx.settings, event["batchId"],
                                   **{event["field"]: event["at"]})


@blueprint.lambda_function(name="ingest_image_group")
def ingest_image_group(event: dict[str, Any], context: Any) -> dict[str, Any]:
    archive = event["archive"]
    item = event["item"]
    return batch_steps.ingest_group(
        _services(runtime()), event["batchId"], archive["Bucket"], archive["Key"],
        item["group"], item["entries"],
    )


@blueprint.lambda_function(name="summarize_batch")
def summarize_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = runtime()
    return batch_steps.summarize_batch(ctx.client("s3"), ctx.api(), ctx.settings,
                                       event["batchId"])


@blueprint.lambda_function(name="record_batch_error")
def record_batch_error(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """From the Catch of a deterministic failure: `{"batchId", "error": {"Error", "Cause"}}`."""
    message = execution_events.cause_message(event["error"].get("Cause"))
    ctx = runtime()
    return batch_record.record_batch_error(ctx.api(), ctx.client("s3"), ctx.settings,
                                           event["batchId"], message)


@blueprint.lambda_function(name="provision_inference")
def provision_inference(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = runtime()
    return inference.provision_inference(_inference_clients(ctx), ctx.settings, event["batchId"])


@blueprint.lambda_function(name="check_inference")
def check_inference(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"batchId", "previous"}`: one poll of the batch's queues (see AwaitInference)."""
    ctx = runtime()
    return inference.check_inference(_inference_clients(ctx), ctx.settings, event["batchId"],
                                     event.get("previous"), datetime.now(UTC))


@blueprint.lambda_function(name="teardown_inference")
def teardown_inference(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Delete the batch's mapping and queues; with `timedOut`, record why first."""
    ctx = runtime()
    check = event.get("check") or {}
    if check.get("timedOut"):
        batch_record.record_batch_error(ctx.api(), ctx.client("s3"), ctx.settings,
                                        event["batchId"],
                                        inference.timeout_message(check, ctx.settings))
    return inference.teardown_inference(_inference_clients(ctx), ctx.settings, event["batchId"])


@blueprint.lambda_function(name="ingest_delete")
def ingest_delete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What the API's stopBatch sends, `{"batch": id}`: stop, tear down, set processingEnd.

    The API invokes it as `IngestDelete-<stage>` (Settings.ingest_delete_function_name), a name
    Chalice cannot give: `animl-ingest deploy` publishes this function's package under it.
    """
    ctx = runtime()
    account = account_of(context)
    return lifecycle.stop_batch(ctx.client("stepfunctions"), _inference_clients(ctx), ctx.api(),
                                ctx.client("s3"), ctx.settings, account, event["batch"],
                                datetime.now(UTC))


@blueprint.schedule("rate(1 hour)", name="sweep_inference_resources")
def sweep_inference_resources(event: Any) -> dict[str, Any]:
    """Release per-batch resources of batches abandoned longer than the configured age."""
    ctx = runtime()
    account = account_of(event.context)
    swept = lifecycle.sweep(ctx.client("stepfunctions"), _inference_clients(ctx), ctx.api(),
                            ctx.client("s3"), ctx.settings, account, datetime.now(UTC))
    return {"swept": swept}


@blueprint.on_cw_event(
    {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"status": list(execution_events.ENDED_BADLY)},
    },
    name="on_execution_status_change",
)
def on_execution_status_change(event: Any) -> None:
    """Record a batch error for an execution that ended badly (not already recorded)."""
    ctx = runtime()
    raw = event.to_dict()
    if not str(raw.get("detail", {}).get("stateMachineArn", "")).endswith(
        ctx.settings.state_machine_name
    ):
        return
    s3 = ctx.client("s3")
    batch_id = execution_events.batch_id_of(raw)
    record = batch_record.read_batch_record(s3, ctx.settings, batch_id) if batch_id else {}
    found = execution_events.batch_error_for(raw, batch_ended=batch_record.batch_ended(record))
    if found:
        batch_id, message = found
        batch_record.record_batch_error(ctx.api(), s3, ctx.settings, batch_id, message)
