"""Mapped SQS queues are read by pollers of their own, as Lambda's are, not inside SendMessage."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from animl_local.lambda_adapter import handlers_serve_invocations
from animl_local.moto_sqs_pollers import (
    CONCURRENT_BATCHES,
    SqsPollers,
    failed_ids,
    mapped_queues_polled,
)
from functions.batch import inference
from tests.animl_local import handlers_for_adapter_tests as handlers
from tests.animl_local.test_lambda_adapter import MODULE, REGION, aws, create  # noqa: F401
from tests.leftovers import eventually


@pytest.fixture
def pollers(aws: None) -> Iterator[SqsPollers]:  # noqa: F811
    handlers.RELEASE.clear()
    with handlers_serve_invocations(), mapped_queues_polled() as running:
        yield running
    handlers.RELEASE.set()


def mapped_queue(handler: str, max_receives: int = 5, **mapping: Any) -> tuple[str, str, str]:
    """(queue URL, DLQ URL, mapping UUID): a queue with a DLQ, mapped to `handler`."""
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName="q-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="q", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    create("consumer", f"{MODULE}.{handler}")
    uuid = boto3.client("lambda", region_name=REGION).create_event_source_mapping(
        EventSourceArn=arn, FunctionName="consumer", **mapping)["UUID"]
    return url, dlq, uuid


def depth(url: str) -> int:
    """Messages waiting or in flight, as the state machine's inference check counts them."""
    return inference._depth(boto3.client("sqs", region_name=REGION), url)


def send(url: str, bodies: list[dict[str, Any]]) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))


def records() -> list[dict[str, Any]]:
    return [record for event, _ in handlers.CALLS for record in event["Records"]]


def test_send_message_returns_while_the_function_still_runs(pollers: SqsPollers) -> None:
    url, _, _ = mapped_queue("held")
    send(url, [{"n": 1}])  # moto alone would run the function here, and wait for it
    eventually(lambda: handlers.CALLS, seconds=5, what="the poller's invocation")
    assert depth(url) == 1  # in flight while the function runs
    handlers.RELEASE.set()
    eventually(lambda: depth(url) == 0, seconds=5, what="the processed message's deletion")
    [record] = records()
    assert json.loads(record["body"]) == {"n": 1}
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":q")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["receiptHandle"] and record["md5OfBody"]


def test_a_batch_holds_at_most_the_mapping_batch_size(pollers: SqsPollers) -> None:
    url, _, uuid = mapped_queue("echo", BatchSize=10, Enabled=False)
    send(url, [{"n": n} for n in range(25)])
    boto3.client("lambda", region_name=REGION).update_event_source_mapping(UUID=uuid,
                                                                          Enabled=True)
    eventually(lambda: depth(url) == 0, seconds=10, what="the queue's draining")
    assert sorted(json.loads(r["body"])["n"] for r in records()) == list(range(25))
    assert max(len(event["Records"]) for event, _ in handlers.CALLS) == 10
    assert len(handlers.CALLS) >= 3


def test_no_message_sent_while_pollers_receive_and_delete_is_lost(pollers: SqsPollers) -> None:
    url, _, _ = mapped_queue("echo")
    senders = [threading.Thread(target=send, args=(url, [{"n": n} for n in range(k, 600, 6)]))
               for k in range(6)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    eventually(lambda: depth(url) == 0, seconds=30, what="the queue's draining")
    assert sorted(json.loads(r["body"])["n"] for r in records()) == list(range(600))


def test_reported_item_failures_go_back_and_end_in_the_dead_letter_queue(
        pollers: SqsPollers) -> None:
    url, dlq, _ = mapped_queue("report_failures", max_receives=3,
                               FunctionResponseTypes=["ReportBatchItemFailures"])
    send(url, [{"n": 1}, {"n": 2, "fail": True}, {"n": 3}])
    eventually(lambda: depth(dlq) == 1 and depth(url) == 0, seconds=10,
               what="the failing message's move to the DLQ")
    tries = [json.loads(r["body"])["n"] for r in records()]
    assert sorted(tries) == [1, 2, 2, 2, 3]  # received maxReceiveCount times, then moved


def test_a_function_error_returns_the_whole_batch(pollers: SqsPollers) -> None:
    url, dlq, _ = mapped_queue("fail", max_receives=2)
    send(url, [{"n": 1}])
    eventually(lambda: depth(dlq) == 1 and depth(url) == 0, seconds=10,
               what="the message's move to the DLQ")


def test_a_deleted_mapping_is_polled_no_more_and_stop_leaves_no_thread(aws: None) -> None:  # noqa: F811
    with handlers_serve_invocations(), mapped_queues_polled() as pollers:
        url, _, uuid = mapped_queue("echo")
        assert pollers.running == CONCURRENT_BATCHES
        boto3.client("lambda", region_name=REGION).delete_event_source_mapping(UUID=uuid)
        eventually(lambda: pollers.running == 0, seconds=5, what="the poller's end")
        send(url, [{"n": 1}])
        sqs = boto3.client("sqs", region_name=REGION)
        assert sqs.receive_message(QueueUrl=url)["Messages"]  # left in the queue
    assert not [t for t in threading.enumerate() if t.name.startswith("sqs-poller-")]
    assert handlers.CALLS == []


def test_stopping_ends_every_poller(aws: None) -> None:  # noqa: F811
    with handlers_serve_invocations(), mapped_queues_polled() as pollers:
        mapped_queue("echo")
        assert pollers.running == CONCURRENT_BATCHES
    assert pollers.running == 0
    assert not [t for t in threading.enumerate() if t.name.startswith("sqs-poller-")]


@pytest.mark.parametrize("payload, errored, reports, failed", [
    (json.dumps({}), False, True, set()),
    (json.dumps({"batchItemFailures": []}), False, True, set()),
    (json.dumps({"batchItemFailures": [{"itemIdentifier": "b"}]}), False, True, {"b"}),
    (json.dumps({"batchItemFailures": [{"itemIdentifier": "b"}]}), False, False, set()),
    (json.dumps({"batchItemFailures": [{"itemIdentifier": "z"}]}), False, True, {"a", "b"}),
    (json.dumps({"batchItemFailures": [{"itemIdentifier": None}]}), False, True, {"a", "b"}),
    (json.dumps({"batchItemFailures": [{}]}), False, True, {"a", "b"}),
    ("not json", False, True, {"a", "b"}),
    (json.dumps({"errorType": "X"}), True, True, {"a", "b"}),
])
def test_which_messages_go_back_is_decided_as_lambda_does(
        payload: str, errored: bool, reports: bool, failed: set[str]) -> None:
    class Message:
        def __init__(self, id: str) -> None:
            self.id = id
    messages: Any = [Message("a"), Message("b")]
    assert failed_ids(messages, payload, errored, reports) == failed
