"""Lambda's SQS pollers for moto: each mapped queue is read by pollers of its own.

moto (5.2) runs an SQS event source mapping inside SendMessage: the sender waits while the
queue is received from, the function runs and the messages are deleted. In a local run that
sender is the stand-in API's createImage (the service's automation rule), so every image's
record waited on inference, and since moto's SQS is not safe for concurrent receives, on every
other image's inference too (2 s a createImage, on average, over a run of 1,000).

On AWS, Lambda's pollers receive from the queue on their own, apart from the senders. Here
likewise: a mapping made on this stage is taken off moto's send path and given five poller
threads, each of which receives up to the mapping's BatchSize messages, invokes the function
with them (through moto's Invoke, so our handler runs it) and deletes what it processed. As on
AWS:
- a function error returns the whole batch to the queue; with ReportBatchItemFailures, the
  items the function names as failed go back (and an answer naming an item not in the batch
  fails the batch);
- a message received maxReceiveCount times goes to the dead-letter queue (moto's receive
  does that);
- a disabled mapping is not polled, and a deleted mapping's (or queue's) poller ends.
Unlike AWS, a message goes back visible at once, not after the visibility timeout (local runs
retry at once), and the five batches in flight at a time do not scale up.

Local only, entered by the embedded stage; its pollers end with it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.awslambda.models import EventSourceMapping, LambdaBackend
from moto.sqs.exceptions import QueueDoesNotExist
from moto.sqs.models import Message, Queue, SQSBackend, sqs_backends

logger = logging.getLogger(__name__)

# How long a poller waits for a message (long polling), and so how soon it sees it should stop.
WAIT_SECONDS = 1
# Batches in flight per mapping: Lambda starts with five concurrent invocations per SQS mapping.
CONCURRENT_BATCHES = 5
PAUSED_SECONDS = 0.2  # between looks at a disabled mapping


@dataclass
class SqsPollers:
    """The stage's pollers, CONCURRENT_BATCHES per SQS event source mapping made while it runs."""

    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, mapping: EventSourceMapping, queue: Queue, lambda_: LambdaBackend) -> None:
        """Poll `queue` for `mapping`, which `lambda_` (the backend that made it) holds."""
        for number in range(CONCURRENT_BATCHES):
            thread = threading.Thread(target=self._poll, args=(mapping, queue, lambda_),
                                      daemon=True, name=f"sqs-poller-{queue.name}-{number}")
            with self._lock:
                self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 60) -> None:
        """Stop polling and wait for the batches in flight (a poller wakes within a second)."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s did not end within %s s", thread.name, timeout)

    @property
    def running(self) -> int:
        with self._lock:
            return sum(thread.is_alive() for thread in self._threads)

    def _poll(self, mapping: EventSourceMapping, queue: Queue, lambda_: LambdaBackend) -> None:
        sqs = sqs_backends[mapping.account_id][mapping.region]
        held = _queue_held(queue)
        while not self._stop.is_set() and mapping.uuid in lambda_._event_source_mappings:
            if not mapping.enabled:
                self._stop.wait(PAUSED_SECONDS)
                continue
            try:
                with held:
                    messages = sqs.receive_message(
                        queue.name, int(mapping.batch_size or 10), 0,
                        queue.visibility_timeout)  # type: ignore[attr-defined]  # from attributes
                    if not messages:
                        # Woken by the next send (moto's notifies under this lock, so none is
                        # missed). Not wait_for_messages: its test lists the whole queue at
                        # every send, and a backlog made that most of a run's SQS time.
                        held.wait(WAIT_SECONDS)
                        continue
                self._deliver(mapping, queue, messages, sqs, lambda_)
            except QueueDoesNotExist:
                return  # deleted with its batch: nothing left to poll
            except Exception:  # a poller outlives a bad batch, as Lambda's do
                logger.exception("polling %s failed", queue.name)
                self._stop.wait(PAUSED_SECONDS)

    @staticmethod
    def _deliver(mapping: EventSourceMapping, queue: Queue, messages: list[Message],
                 sqs: SQSBackend, lambda_: LambdaBackend) -> None:
        event = {"Records": [sqs_record(message, queue, mapping.region)
                             for message in messages]}
        response_headers: dict[str, Any] = {}
        payload = lambda_.invoke(mapping.function_arn, None, json.dumps(event), {},
                                 response_headers)
        errored = "x-amz-function-error" in response_headers
        failed = failed_ids(messages, payload, errored,
                            "ReportBatchItemFailures" in (mapping.function_response_types or []))
        with _queue_held(queue):
            for message in messages:
                if message.id in failed:
                    sqs.change_message_visibility(queue.name, str(message.receipt_handle), 0)
                else:
                    sqs.delete_message(queue.name, str(message.receipt_handle))


def _queue_held(queue: Queue) -> threading.Condition:
    """The lock moto's SendMessage appends under, held while a poller receives or deletes: a
    delete rebuilds the queue's message list (a message sent meanwhile was lost), and two
    receives at once change the in-flight set under each other."""
    return queue._messages_lock  # type: ignore[no-any-return]


def sqs_record(message: Message, queue: Queue, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event."""
    return {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": str(message.approximate_receive_count),
            "SentTimestamp": str(message.sent_timestamp),
            "SenderId": message.sender_id,
            "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
        },
        "messageAttributes": {},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue.queue_arn,
        "awsRegion": region,
    }


def failed_ids(messages: list[Message], payload: Any, errored: bool,
               reports_item_failures: bool) -> set[str]:
    """The messages of a batch that go back to the queue, as Lambda decides it: all of them on
    a function error; with ReportBatchItemFailures, those the answer names, or all of them if
    it names one that is not in the batch or names none properly."""
    every = {message.id for message in messages}
    if errored:
        return every
    if not reports_item_failures:
        return set()
    try:
        answer = json.loads(payload) if payload else None
        named = [item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures") or []]
    except (ValueError, TypeError, KeyError, AttributeError):
        return every
    if any(not isinstance(name, str) or name not in every for name in named):
        return every
    return set(named)


@contextmanager
def mapped_queues_polled() -> Iterator[SqsPollers]:
    """Within this context, SQS event source mappings are served by pollers, not SendMessage."""
    pollers = SqsPollers()
    create = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: LambdaBackend, spec: dict[str, Any]
                                    ) -> EventSourceMapping:
        mapping = create(self, spec)
        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            if queue.lambda_event_source_mappings.get(mapping.function_arn) is mapping:
                # Off moto's send path: its SendMessage would invoke the function inline.
                del queue.lambda_event_source_mappings[mapping.function_arn]
                pollers.start(mapping, queue, self)
        return mapping

    with mock.patch.object(LambdaBackend, "create_event_source_mapping",
                           create_event_source_mapping):
        try:
            yield pollers
        finally:
            pollers.stop()
