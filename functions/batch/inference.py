"""Each batch's ML inference resources: a queue, its dead-letter queue and a Lambda mapping.

The Animl API computes the queue URL from the name, so the names are a contract. Every function
here is idempotent: provisioning finds what exists, teardown deletes what is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.platform import logs
from functions.platform.settings import Settings

logger = logs.get_logger(__name__)

DEPTH_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed")


@dataclass(frozen=True)
class Clients:
    sqs: Any
    lambda_: Any


def provision_inference(clients: Clients, settings: Settings, batch_id: str) -> dict[str, Any]:
    """Create (or find) the batch's queue, dead-letter queue and event source mapping."""
    dlq_url = clients.sqs.create_queue(QueueName=settings.inference_dlq_name(batch_id))["QueueUrl"]
    # Set, not passed to create_queue: SQS refuses a create whose attributes differ from the
    # existing queue's, so a second provisioning with another setting would fail.
    clients.sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes={
        "MessageRetentionPeriod": str(settings.inference_dlq_retention_seconds)})
    dlq_arn = _queue_arn(clients.sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn,
               "maxReceiveCount": str(settings.inference_max_receives)}
    queue_url = clients.sqs.create_queue(
        QueueName=settings.inference_queue_name(batch_id),
        Attributes={"VisibilityTimeout": str(settings.inference_visibility_timeout),
                    "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    queue_arn = _queue_arn(clients.sqs, queue_url)
    existing = _mappings(clients.lambda_, queue_arn, settings.inference_function_name)
    if existing:
        uuid = existing[0]["UUID"]
    else:
        uuid = clients.lambda_.create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=settings.inference_function_name,
            BatchSize=settings.inference_batch_size,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )["UUID"]
    return {"queueUrl": queue_url, "dlqUrl": dlq_url, "mappingUuid": uuid}


def check_inference(clients: Clients, settings: Settings, batch_id: str,
                    previous: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """One poll of both queues; `done` after enough idle polls, `timedOut` past the max wait."""
    previous = previous or {}
    started = previous.get("startedAt") or now.isoformat()
    depths = {name: _depth(clients.sqs, url)
              for name, url in _existing_queues(clients.sqs, settings, batch_id).items()}
    idle = all(depth == 0 for depth in depths.values())
    idle_polls = previous.get("idlePolls", 0) + 1 if idle else 0
    waited = (now - datetime.fromisoformat(started)).total_seconds()
    return {
        "startedAt": started,
        "idlePolls": idle_polls,
        "depths": depths,
        "done": idle_polls >= settings.inference_idle_polls,
        "timedOut": idle_polls < settings.inference_idle_polls
        and waited >= settings.inference_max_wait_seconds,
        "waitedSeconds": round(waited, 1),
    }


def timeout_message(check: dict[str, Any], settings: Settings) -> str:
    depths = check.get("depths") or {}
    return (f"Inference did not finish within {settings.inference_max_wait_seconds} s: "
            f"{depths.get('queue', 0)} message(s) still queued, {depths.get('dlq', 0)} in the "
            "dead-letter queue; resources torn down anyway")


def teardown_inference(clients: Clients, settings: Settings, batch_id: str) -> dict[str, int]:
    """Delete the mapping, then the queues; a second run finds nothing and succeeds."""
    queues = _existing_queues(clients.sqs, settings, batch_id)
    deleted_mappings = 0
    if "queue" in queues:
        arn = _queue_arn_of_name(settings, queues["queue"])
        for mapping in _mappings(clients.lambda_, arn, settings.inference_function_name):
            try:
                clients.lambda_.delete_event_source_mapping(UUID=mapping["UUID"])
                deleted_mappings += 1
            except clients.lambda_.exceptions.ResourceNotFoundException:
                pass  # a concurrent teardown (a stop racing the state machine) got it first
    deleted_queues = 0
    for url in queues.values():
        try:
            clients.sqs.delete_queue(QueueUrl=url)
            deleted_queues += 1
        except clients.sqs.exceptions.QueueDoesNotExist:
            pass
    return {"mappings": deleted_mappings, "queues": deleted_queues}


def may_release(clients: Clients, settings: Settings, batch_id: str, created: datetime,
                now: datetime) -> bool:
    """Whether the batch's queues may go: both empty, or past the DLQ's retention period (by
    then SQS itself has dropped what an operator could have re-driven)."""
    queues = _existing_queues(clients.sqs, settings, batch_id)
    if all(_depth(clients.sqs, url) == 0 for url in queues.values()):
        return True
    retention = settings.inference_dlq_retention_seconds
    if "dlq" in queues:
        attributes = clients.sqs.get_queue_attributes(
            QueueUrl=queues["dlq"], AttributeNames=["MessageRetentionPeriod"])["Attributes"]
        retention = int(attributes.get("MessageRetentionPeriod", retention))
    return (now - created).total_seconds() >= retention


def batches_with_resources(clients: Clients, settings: Settings) -> dict[str, datetime]:
    """batch id -> when its queue was created, for every batch that has an inference queue."""
    found: dict[str, datetime] = {}
    paginator = clients.sqs.get_paginator("list_queues")
    for page in paginator.paginate(QueueNamePrefix=settings.inference_queue_prefix):
        for url in page.get("QueueUrls", []):
            batch_id = settings.batch_id_of_queue(url.rsplit("/", 1)[-1])
            created = clients.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["CreatedTimestamp"])["Attributes"]["CreatedTimestamp"]
            when = datetime.fromtimestamp(float(created), UTC)
            found[batch_id] = min(when, found.get(batch_id, when))
    return found


def _existing_queues(sqs: Any, settings: Settings, batch_id: str) -> dict[str, str]:
    queues = {}
    for role, name in (("queue", settings.inference_queue_name(batch_id)),
                       ("dlq", settings.inference_dlq_name(batch_id))):
        try:
            queues[role] = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
    return queues


def _queue_arn_of_name(settings: Settings, url: str) -> str:
    """The queue's ARN from its URL (https://sqs.<region>.amazonaws.com/<account>/<name>),
    without a call that fails once the queue is gone."""
    account, name = url.rstrip("/").split("/")[-2:]
    return f"arn:aws:sqs:{settings.region}:{account}:{name}"


def _queue_arn(sqs: Any, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]


def _depth(sqs: Any, url: str) -> int:
    """Messages visible, in flight and delayed; a queue deleted meanwhile (a stop) holds none."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=url,
                                              AttributeNames=list(DEPTH_ATTRIBUTES))
    except sqs.exceptions.QueueDoesNotExist:
        return 0
    return sum(int(attributes["Attributes"].get(name, 0)) for name in DEPTH_ATTRIBUTES)


def _mappings(lambda_: Any, queue_arn: str, function_name: str) -> list[dict[str, Any]]:
    paginator = lambda_.get_paginator("list_event_source_mappings")
    return [m for page in paginator.paginate(EventSourceArn=queue_arn, FunctionName=function_name)
            for m in page.get("EventSourceMappings", [])]
