"""Handlers the adapter tests point moto's Lambda functions at."""

from __future__ import annotations

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
    import json

    return len(json.dumps(event))
