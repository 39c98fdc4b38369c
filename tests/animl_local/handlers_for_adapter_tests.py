"""Handlers the adapter tests point moto's Lambda functions at."""

from __future__ import annotations

import json
import threading
from typing import Any

CALLS: list[tuple[Any, str]] = []


class DeliberateFailure(Exception):
    pass


def echo(event: Any, context: Any) -> dict[str, Any]:
    CALLS.append((event, context.function_name))
    return {"got": event, "remainingMs": context.get_remaining_time_in_millis() > 0}


def fail(event: Any, context: Any) -> None:
    raise DeliberateFailure("it went wrong on purpose")


def measure(event: Any, context: Any) -> int:
    """A small answer about a big event: its size."""
    return len(json.dumps(event))


RELEASE = threading.Event()


def held(event: Any, context: Any) -> dict[str, Any]:
    """Records the event, then answers only once RELEASE is set (or after 10 s)."""
    CALLS.append((event, context.function_name))
    RELEASE.wait(10)
    return {}


def report_failures(event: Any, context: Any) -> dict[str, Any]:
    """Names as failed the records whose body asks for it, as a partial-batch consumer does."""
    CALLS.append((event, context.function_name))
    return {"batchItemFailures": [{"itemIdentifier": record["messageId"]}
                                  for record in event["Records"]
                                  if json.loads(record["body"]).get("fail")]}
