"""moto's SQS (5.2) counts a queue's messages reading the clock once per count, not per message.

moto decides whether a message is visible, and whether it is delayed, by reading the clock
through datetime arithmetic each time it asks (several microseconds). A queue's visible messages
(what ReceiveMessage takes from) and its three ApproximateNumberOf* counts ask it of every
message; and SendMessage builds every attribute of the queue to read one
(ContentBasedDeduplication): three scans of the backlog, four clock reads per message, at each
send. Sending 1,000 messages to a queue nobody reads took 11 ms per send for the first 250 and
54 ms for the last. Here each count reads the clock once and compares every message with that
instant: the same messages and counts, as of one moment instead of a moment per message.
Local only, entered by the embedded stage; the tests compare the answers with moto's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from moto.core.utils import unix_time_millis
from moto.sqs.models import Message, Queue


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


@contextmanager
def queue_counts_read_the_clock_once() -> Iterator[None]:
    with mock.patch.object(Queue, "messages", property(visible_messages)), \
            mock.patch.object(Queue, "approximate_number_of_messages_delayed",
                              property(delayed_count)), \
            mock.patch.object(Queue, "approximate_number_of_messages_not_visible",
                              property(not_visible_count)), \
            mock.patch.object(Queue, "approximate_number_of_messages",
                              property(visible_count)):
        yield
