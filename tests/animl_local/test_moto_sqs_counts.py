"""A queue's visible messages, its counts and a message's retention check answer as moto's own,
without reading the clock or the queue's attributes per message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core import utils as moto_utils
from moto.sqs.models import Queue, SQSBackend, sqs_backends

from animl_local.moto_sqs_counts import (
    delayed_count,
    not_visible_count,
    queue_counts_kept_cheap,
    retention_checked_in_constant_time,
    visible_count,
    visible_messages,
)

REGION = "us-west-2"
COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
          "ApproximateNumberOfMessagesDelayed")


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name=REGION)


def mixed_queue(sqs: Any, name: str = "mixed") -> tuple[str, Queue]:
    """A queue holding visible (3), in-flight (2) and delayed (2) messages."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    for number in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"now {number}")
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=300)
    assert len(received["Messages"]) == 2
    for number in range(2):
        sqs.send_message(QueueUrl=url, MessageBody=f"later {number}", DelaySeconds=300)
    return url, sqs_backends[DEFAULT_ACCOUNT_ID][REGION].get_queue(name)


def test_visible_messages_and_counts_are_motos_own(sqs: Any) -> None:
    _, queue = mixed_queue(sqs)

    assert visible_messages(queue) == Queue.messages.fget(queue)
    assert [message.body for message in visible_messages(queue)] == ["now 2", "now 3", "now 4"]
    assert (visible_count(queue), not_visible_count(queue), delayed_count(queue)) == (
        Queue.approximate_number_of_messages.fget(queue),
        Queue.approximate_number_of_messages_not_visible.fget(queue),
        Queue.approximate_number_of_messages_delayed.fget(queue),
    ) == (3, 2, 2)  # in flight: the two received; delayed: the two sent late


def test_the_api_answers_as_without_the_patch(sqs: Any) -> None:
    url, _ = mixed_queue(sqs)
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    with queue_counts_kept_cheap():
        after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]

    assert after == before
    assert sorted(message["Body"] for message in received) == ["now 2", "now 3", "now 4"]


@contextmanager
def clock_reads() -> Iterator[list[int]]:
    """How many times moto's clock is read meanwhile (every read goes through unix_time)."""
    reads = [0]
    read = moto_utils.unix_time

    def counted(*args: Any) -> float:
        reads[0] += 1
        return read(*args)

    with mock.patch.object(moto_utils, "unix_time", counted):
        yield reads


@pytest.mark.parametrize("patched", [True, False])
def test_a_send_reads_the_clock_as_often_whatever_the_backlog(sqs: Any, patched: bool) -> None:
    """Without the patch, moto's SendMessage reads the clock four times per message queued."""
    reads_per_send = []
    with queue_counts_kept_cheap() if patched else nullcontext():
        for backlog in (5, 50):
            url = sqs.create_queue(QueueName=f"backlog-{backlog}")["QueueUrl"]
            for number in range(backlog):
                sqs.send_message(QueueUrl=url, MessageBody=str(number))
            with clock_reads() as reads:
                sqs.send_message(QueueUrl=url, MessageBody="one more")
            reads_per_send.append(reads[0])

    if patched:
        assert reads_per_send[0] == reads_per_send[1], reads_per_send
    else:
        assert reads_per_send[1] - reads_per_send[0] >= 4 * 45, reads_per_send


@pytest.mark.parametrize("age_seconds", [0, 59, 61])
def test_the_retention_check_answers_as_motos_own(sqs: Any, age_seconds: int) -> None:
    url = sqs.create_queue(QueueName="kept", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="kept?")
    backend = sqs_backends[DEFAULT_ACCOUNT_ID][REGION]
    message = backend.get_queue("kept")._messages[0]
    message.sent_timestamp -= age_seconds * 1000

    ours = retention_checked_in_constant_time(backend, "kept", message)
    assert ours == SQSBackend.is_message_valid_based_on_retention_period(
        backend, "kept", message)
    assert ours == (age_seconds < 60)
