"""AWS's documented hard limits that ingest must live within: one place, each with its figure
and the error AWS answers when it is crossed. The product sizes its keys and Map items by these;
the embedded stage (local only) refuses what AWS refuses by the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    what: str
    max_bytes: int  # the largest size AWS accepts (bytes of UTF-8 where text)
    error: str  # AWS's error name when it is crossed


# S3 object key: "up to 1,024 bytes long" of UTF-8 (S3 user guide, Object keys).
S3_KEY = Limit("S3 object key", 1024, "KeyTooLongError")
# Step Functions: the input or output of a task, state or execution, 256 KiB of UTF-8 (API
# reference: "Maximum length of 262144"); an item of a Distributed Map is a child's input.
STATE_PAYLOAD = Limit("Step Functions state input or output", 256 * 1024,
                      "States.DataLimitExceeded")
# Lambda Invoke: 6 MB for a synchronous request or response (6,291,456 bytes), 1 MB for an
# asynchronous one (it was 256 KB until late 2025; the Invoke API reference gives 1 MB now).
# Lambda answers RequestEntityTooLargeException (HTTP 413), as seen in the wild, although its
# API model names the shape RequestTooLargeException.
LAMBDA_SYNC_PAYLOAD = Limit("Lambda synchronous invocation payload", 6 * 1024 * 1024,
                            "RequestEntityTooLargeException")
LAMBDA_ASYNC_PAYLOAD = Limit("Lambda asynchronous invocation payload", 1024 * 1024,
                             "RequestEntityTooLargeException")
# SQS message body: at most the queue's MaximumMessageSize, in bytes; 1 MiB is the highest a
# queue may set and its default (256 KiB before August 2025). A SendMessageBatch's bodies
# together: 1 MiB too (BatchRequestTooLong).
SQS_MESSAGE = Limit("SQS message", 1024 * 1024, "InvalidParameterValue")

ALL = (S3_KEY, STATE_PAYLOAD, LAMBDA_SYNC_PAYLOAD, LAMBDA_ASYNC_PAYLOAD, SQS_MESSAGE)


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
