"""Routes moto's Lambda invocations to our Python handlers, in this process.

moto answers Lambda invokes with canned replies (or Docker, which is not here). Every invoke path
it has (the Invoke API used by Step Functions tasks, S3 bucket notifications, SQS event source
mappings) ends in `LambdaFunction._invoke_lambda` or `LambdaSimpleBackend.invoke`; this module
replaces both, for the duration of a context, with: import the function's configured handler, call
it with the event and a Lambda-like context, and return its result or the Lambda error payload.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend

from animl_local.aws_calls import running_function

logger = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def import_handler(handler_string: str) -> Handler:
    """`package.module.name` -> the callable, as the Lambda runtime resolves `Handler`."""
    module_name, _, attribute = handler_string.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def error_payload(exc: BaseException) -> dict[str, Any]:
    """What Lambda returns for an unhandled exception; Step Functions reads `errorType`."""
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
    }


@dataclass
class InvocationLog:
    """Counts of invocations per function name, for reports and tests."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self, function_name: str, seconds: float) -> None:
        self.counts[function_name] = self.counts.get(function_name, 0) + 1
        self.seconds[function_name] = self.seconds.get(function_name, 0.0) + seconds

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def call_handler(fn: LambdaFunction, event: Any, resolve: Callable[[str], Handler],
                 log: InvocationLog) -> tuple[str, bool, str]:
    """Invoke `fn`'s handler; returns moto's (payload, errored, logs) triple."""
    started = time.monotonic()
    context = LambdaContext(
        function_name=fn.function_name,
        invoked_function_arn=fn.function_arn,
        memory_limit_in_mb=int(fn.memory_size),
        timeout_seconds=int(fn.timeout),
    )
    try:
        with running_function(fn.function_name):  # whose policy its AWS calls need (aws_calls)
            result = resolve(str(fn.handler))(event if event is not None else {}, context)
    except Exception as exc:  # any handler error is a Lambda function error
        logger.info("%s failed: %s: %s", fn.function_name, type(exc).__name__, exc)
        return json.dumps(error_payload(exc)), True, ""
    finally:
        log.record(fn.function_name, time.monotonic() - started)
    return json.dumps(result, default=str), False, ""


@contextmanager
def handlers_serve_invocations(resolve: Callable[[str], Handler] = import_handler
                               ) -> Iterator[InvocationLog]:
    """Within this context, every moto Lambda invoke runs the function's own Python handler."""
    log = InvocationLog()

    def invoke_lambda(fn: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        return call_handler(fn, event, resolve, log)

    with mock.patch.object(LambdaFunction, "_invoke_lambda", invoke_lambda), \
            mock.patch.object(LambdaSimpleBackend, "invoke", LambdaBackend.invoke):
        yield log
