"""Lambda handlers: glue only. Each turns its event into arguments and calls one function of
`functions`, with the container's clients from `functions.platform.runtime`.

Registered on a Blueprint so the root `app.py` stays a shim and handler strings name this module.
Errors raised below reach Step Functions as the exception's class name (`BadArchive`,
`AnimlApiUnavailable`, ...), which is what the ASL's Retry and Catch match on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import UTC, datetime
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
from functions.platform import logs
from functions.platform.bucket_owner import remember_invocation
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.runtime import (
    Runtime,
    account_of,
    image_pool,
    remaining_seconds_of,
    runtime,
)
from functions.platform.settings import Settings

logs.configure_lambda_logging()
logger = logs.get_logger("handlers")

blueprint = Blueprint(__name__)

# Read at import because Chalice needs the bucket name when it builds the notification; the
# stage's config.json sets INGESTION_BUCKET for deploy and runtime alike.
INGESTION_BUCKET = os.environ.get("INGESTION_BUCKET", Settings(stage="dev").ingestion_bucket)


def _about_the_batch(handler: Callable[[dict[str, Any], Any], Any]
                     ) -> Callable[[dict[str, Any], Any], Any]:
    """Log lines of a state-machine task carry its batch (and group); S3 calls expect the
    invocation's account as bucket owner."""
    @functools.wraps(handler)
    def with_batch(event: dict[str, Any], context: Any) -> Any:
        remember_invocation(context)
        item = event.get("item") or {}
        with logs.about(batchId=event.get("batchId") or event.get("batch"),
                        group=item.get("group")):
            return handler(event, context)
    return with_batch


def _services(rt: Runtime, context: Any) -> Services:
    """The clients of one invocation: the API's retries end in time for `context`'s end."""
    return Services(s3=rt.client("s3"), api=_api(rt, context), settings=rt.settings,
                    image_pool=image_pool(), decode_budget=rt.decode_budget)


def _api(rt: Runtime, context: Any) -> AnimlApiClient:
    return rt.api(remaining_seconds_of(context))


def _inference_clients(rt: Runtime) -> inference.Clients:
    return inference.Clients(sqs=rt.client("sqs"), lambda_=rt.client("lambda"))


@blueprint.on_s3_event(bucket=INGESTION_BUCKET, events=["s3:ObjectCreated:*"], name="on_upload")
def on_upload(event: Any) -> None:
    """Entry point: a zip starts its batch, an image is ingested, anything else is ignored."""
    remember_invocation(event.context)
    rt = runtime()
    logger.info(uploads.receive_upload(
        lambda: _services(rt, event.context), rt.client("stepfunctions"),
        lambda: rt.settings.state_machine_arn(account_of(event.context)), event.bucket,
        event.key, uploads.event_etag(event.to_dict())))


@blueprint.lambda_function(name="inspect_archive")
@_about_the_batch
def inspect_archive(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()
    archive = event["archive"]
    return batch_steps.inspect_batch_archive(rt.client("s3"), rt.settings, event["batchId"],
                                             archive["Bucket"], archive["Key"],
                                             archive.get("ETag"))


@blueprint.lambda_function(name="update_batch_status")
@_about_the_batch
def update_batch_status(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"batchId", "field", "at"[, "total"]}`: the Mark* states, one status field each."""
    rt = runtime()
    return batch_steps.mark_batch_status(_api(rt, context), rt.client("s3"), rt.settings,
                                         event["batchId"], event["field"], event["at"],
                                         event.get("total"))


@blueprint.lambda_function(name="ingest_image_group")
@_about_the_batch
def ingest_image_group(event: dict[str, Any], context: Any) -> dict[str, Any]:
    archive, item = event["archive"], event["item"]
    return batch_steps.ingest_group(_services(runtime(), context), event["batchId"],
                                    archive["Bucket"], archive["Key"], item["group"],
                                    item["entries"], archive.get("ETag"))


@blueprint.lambda_function(name="summarize_batch")
@_about_the_batch
def summarize_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()
    return batch_steps.summarize_batch(rt.client("s3"), _api(rt, context), rt.settings,
                                       event["batchId"], (event.get("archive") or {}).get("ETag"))


@blueprint.lambda_function(name="record_batch_error")
@_about_the_batch
def record_batch_error(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """From the Catch of a deterministic failure: `{"batchId", "error": {"Error", "Cause"}}`."""
    rt = runtime()
    return batch_record.record_caught_error(_api(rt, context), rt.client("s3"), rt.settings,
                                            event["batchId"], event["error"])


@blueprint.lambda_function(name="provision_inference")
@_about_the_batch
def provision_inference(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()
    return inference.provision_inference(_inference_clients(rt), rt.settings, event["batchId"])


@blueprint.lambda_function(name="check_inference")
@_about_the_batch
def check_inference(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"batchId", "previous"}`: one poll of the batch's queues (see AwaitInference)."""
    rt = runtime()
    return inference.check_inference(_inference_clients(rt), rt.settings, event["batchId"],
                                     event.get("previous"), datetime.now(UTC))


@blueprint.lambda_function(name="teardown_inference")
@_about_the_batch
def teardown_inference(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`{"batchId", "check"}`: release the batch's queues (after recording a timeout)."""
    rt = runtime()
    return lifecycle.end_inference(_inference_clients(rt), _api(rt, context), rt.client("s3"),
                                   rt.settings, event["batchId"], event.get("check"))


@blueprint.lambda_function(name="ingest_delete")
@_about_the_batch
def ingest_delete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """What the API's stopBatch sends, `{"batch": id}`: stop, tear down, set processingEnd.

    The API invokes it as `IngestDelete-<stage>` (Settings.ingest_delete_function_name), a name
    Chalice cannot give: `animl-ingest deploy` publishes this function's package under it.
    """
    rt = runtime()
    return lifecycle.stop_batch(rt.client("stepfunctions"), _inference_clients(rt),
                                _api(rt, context),
                                rt.client("s3"), rt.settings, account_of(context),
                                event["batch"], datetime.now(UTC))


@blueprint.schedule("rate(1 hour)", name="sweep_inference_resources")
def sweep_inference_resources(event: Any) -> dict[str, Any]:
    """Release per-batch resources of batches abandoned longer than the configured age."""
    remember_invocation(event.context)
    rt = runtime()
    swept = lifecycle.sweep(rt.client("stepfunctions"), _inference_clients(rt),
                            _api(rt, event.context),
                            rt.client("s3"), rt.settings, account_of(event.context),
                            datetime.now(UTC))
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
    """Record a batch error for an IngestBatch execution that ended badly."""
    remember_invocation(event.context)
    rt = runtime()
    lifecycle.record_bad_end(_api(rt, event.context), rt.client("s3"), rt.settings,
                             event.to_dict())
