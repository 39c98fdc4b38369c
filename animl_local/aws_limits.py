"""The embedded stage refuses what AWS refuses: the limits moto does not enforce (or enforces by
another measure), by the figures in `functions.platform.aws_limits`, with AWS's error names.

- S3: a key over 1,024 bytes of UTF-8 -> KeyTooLongError (moto stores it).
- Step Functions: an execution's input over 256 KiB -> ValidationException (moto takes it); a
  task's parameters (a Map item sent to a Lambda) over 256 KiB ->
  States.DataLimitExceeded (moto checks outputs only, and refuses exactly 256 KiB, which AWS
  accepts).
- Lambda Invoke: a request over 6 MB (synchronous) or 1 MB (asynchronous) ->
  RequestEntityTooLargeException (a response over 6 MB moto itself makes
  Function.ResponseSizeTooLarge).
- SQS: a message body over the queue's MaximumMessageSize, and a batch's bodies together over
  1 MiB, counted in bytes (moto counts characters).
Local only; `enforced()` is entered once by the embedded stage (and the tests' moto).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend
from moto.sqs.exceptions import BatchRequestTooLong, InvalidParameterValue
from moto.sqs.models import SQSBackend
from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (  # noqa: E501
    StateTaskService,
)
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from functions.platform.aws_limits import (
    LAMBDA_ASYNC_PAYLOAD,
    LAMBDA_SYNC_PAYLOAD,
    S3_KEY,
    SQS_MESSAGE,
    STATE_PAYLOAD,
    Limit,
    utf8_size,
)

# moto's Step Functions modules that read the state size quota by name.
_STATE_QUOTA_USERS = (
    "moto.stepfunctions.parser.asl.component.state.state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service",
)


class KeyTooLongError(S3ClientError):
    def __init__(self) -> None:
        super().__init__(S3_KEY.error, "Your key is too long.")


class RequestEntityTooLargeException(LambdaClientError):
    code = 413

    def __init__(self, limit: Limit, size: int, sync: bool) -> None:
        message = (f"Request must be smaller than {limit.max_bytes} bytes for the "
                   "InvokeFunction operation" if sync else
                   f"{size} byte payload is too large for the Event invocation type "
                   f"(limit {limit.max_bytes} bytes)")
        super().__init__(limit.error, message)


def check_s3_key(key: str) -> None:
    if utf8_size(key) > S3_KEY.max_bytes:
        raise KeyTooLongError()


def within_state_payload(value: Any) -> bool:
    text = value if isinstance(value, str) else to_json_str(value)
    return utf8_size(text) <= STATE_PAYLOAD.max_bytes


def _checking_key(original: Callable[..., Any], position: int, name: str) -> Callable[..., Any]:
    """`original`, refusing a too-long key given as argument `position` (or by `name`)."""
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        key = kwargs[name] if name in kwargs else args[position]
        check_s3_key(key)
        return original(self, *args, **kwargs)
    return call


def _task_parameters(original: Callable[..., Any]) -> Callable[..., Any]:
    """A task's parameters (a Lambda's Payload among them) within the state payload limit, as
    on AWS (TaskScheduled's `parameters` holds at most 262,144 bytes); moto checks outputs."""
    def before_eval_execution(self: StateTaskService, env: Any, resource_runtime_part: Any,
                              raw_parameters: dict[str, Any], state_credentials: Any) -> None:
        self._verify_size_quota(env=env, value=raw_parameters)
        original(self, env, resource_runtime_part, raw_parameters, state_credentials)
    return before_eval_execution


def _lambda_invoke(original: Callable[..., Any]) -> Callable[..., Any]:
    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any
               ) -> str | bytes:
        sync = request_headers.get("x-amz-invocation-type", "RequestResponse") == "RequestResponse"
        request_limit = LAMBDA_SYNC_PAYLOAD if sync else LAMBDA_ASYNC_PAYLOAD
        size = len(body.encode() if isinstance(body, str) else body or b"")
        if size > request_limit.max_bytes:
            raise RequestEntityTooLargeException(request_limit, size, sync)
        result: str | bytes = original(self, body, request_headers, response_headers)
        return result  # a response over 6 MB moto already turns into a function error
    return invoke


def _execution_input(original: Callable[..., Any]) -> Callable[..., Any]:
    """StartExecution's input within the state payload limit (moto takes any size)."""
    def validate(self: StateMachine, name: str | None, execution_input: str | None) -> Any:
        if utf8_size(execution_input or "") > STATE_PAYLOAD.max_bytes:
            raise ValidationException(
                "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                f"Member must have length less than or equal to {STATE_PAYLOAD.max_bytes}")
        return original(self, name, execution_input)
    return validate


def _sqs_validate(original: Callable[..., Any]) -> Callable[..., Any]:
    def validate(self: SQSBackend, queue: Any, message_body: str, *args: Any, **kwargs: Any
                 ) -> Any:
        if utf8_size(message_body) > int(queue.maximum_message_size):
            raise InvalidParameterValue(
                "One or more parameters are invalid. Reason: Message must be shorter than "
                f"{queue.maximum_message_size} bytes.")
        return original(self, queue, message_body, *args, **kwargs)
    return validate


def _sqs_batch(original: Callable[..., Any]) -> Callable[..., Any]:
    def send_message_batch(self: SQSBackend, queue_name: str, entries: dict[str, dict[str, Any]]
                           ) -> Any:
        size = sum(utf8_size(entry["MessageBody"]) for entry in entries.values())
        if size > SQS_MESSAGE.max_bytes:
            raise BatchRequestTooLong(size)
        return original(self, queue_name, entries)
    return send_message_batch


@contextmanager
def enforced() -> Iterator[None]:
    """Within this context, moto refuses what AWS refuses (see the module's docstring)."""
    with ExitStack() as stack:
        for method, position, name in (("put_object", 1, "key_name"),
                                       ("create_multipart_upload", 1, "key_name"),
                                       ("copy_object", 2, "dest_key_name")):
            original = getattr(S3Backend, method)
            stack.enter_context(mock.patch.object(S3Backend, method,
                                                  _checking_key(original, position, name)))
        for module in _STATE_QUOTA_USERS:
            stack.enter_context(mock.patch(f"{module}.is_within_size_quota",
                                           within_state_payload))
        stack.enter_context(mock.patch.object(
            StateTaskService, "_before_eval_execution",
            _task_parameters(StateTaskService._before_eval_execution)))
        stack.enter_context(mock.patch.object(
            StateMachine, "_handle_name_input_idempotency",  # both start paths call it first
            _execution_input(StateMachine._handle_name_input_idempotency)))
        stack.enter_context(mock.patch.object(LambdaFunction, "invoke",
                                              _lambda_invoke(LambdaFunction.invoke)))
        stack.enter_context(mock.patch.object(SQSBackend, "_validate_message",
                                              _sqs_validate(SQSBackend._validate_message)))
        stack.enter_context(mock.patch.object(SQSBackend, "send_message_batch",
                                              _sqs_batch(SQSBackend.send_message_batch)))
        yield
