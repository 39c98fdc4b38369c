"""moto's SQS (5.2) counts a queue's messages reading the clock once per count, not per message,
and checks a received message's retention without counting the queue.

moto decides whether a message is visible, and whether it is delayed, by reading the clock
through datetime arithmetic each time it asks (several microseconds). A queue's visible messages
(what ReceiveMessage takes from) and its three ApproximateNumberOf* counts ask it of every
message; and SendMessage builds every attribute of the queue to read one
(ContentBasedDeduplication): three scans of the backlog, four clock reads per message, at each
send. Sending 1,000 messages to a queue nobody reads took 11 ms per send for the first 250 and
54 ms for the last. Here each count reads the clock once and compares every message with that
instant: the same messages and counts, as of one moment instead of a moment per message.
ReceiveMessage also builds every attribute of the queue, for each message it receives, to read
MessageRetentionPeriod: here it reads that one attribute (draining a backlog of n was n^2 work).
Local only, entered by the embedded stage; the tests compare the answers with moto's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from moto.core.utils import unix_time, unix_time_millis
from moto.sqs.models import Message, Queue, SQSBackend


def _visible(message: Message, now: float) -> bool:
    return bool(now > message.visible_at)  # as moto's Message.visible, at `now`


def _delayed(message: Message, now: float) -> bool:
    return bool(now < message.delayed_until)  # as moto's Message.delayed, at `now`


def visible_messages(queue: Queue) -> list[Message]:
    """moto's Queue.messages: those visible and not delayed, in the queue's order."""
    now = unix_time_millis()
    return [message for message in queue._messages
            if _visible(message, now) and not _delayed(message, now)]


def delayed_count(queue: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for message in queue._messages if _delayed(message, now))


def not_visible_count(queue: Queue) -> int:
    now = unix_time_millis()
    return sum(1 for message in queue._messages if not _visible(message, now))


def visible_count(queue: Queue) -> int:
    return len(visible_messages(queue))


def retention_checked_in_constant_time(self: SQSBackend, queue_name: str,
                                       message: Message) -> bool:
    """moto's SQSBackend.is_message_valid_based_on_retention_period, on the one attribute it
    needs."""
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000  # type: ignore[attr-defined, operator]
    return bool(retain_until > unix_time())


@contextmanager
def queue_counts_kept_cheap() -> Iterator[None]:
    with mock.patch.object(Queue, "messages", property(visible_messages)), \
            mock.patch.object(Queue, "approximate_number_of_messages_delayed",
                              property(delayed_count)), \
            mock.patch.object(Queue, "approximate_number_of_messages_not_visible",
                              property(not_visible_count)), \
            mock.patch.object(Queue, "approximate_number_of_messages",
                              property(visible_count)), \
            mock.patch.object(SQSBackend, "is_message_valid_based_on_retention_period",
                              retention_checked_in_constant_time):
        yield
