"""Which AWS calls each Lambda function makes, and whether its IAM policy lets it make them.

moto does not enforce IAM, so a handler whose call its least-privilege policy does not allow
passes every local test and fails on AWS with AccessDenied. This module (local only) closes that
gap in three parts:

- `recording_aws_calls()` records every botocore call made while a Lambda function runs
  (`running_function`, set by `lambda_adapter.call_handler` around each handler call);
- `iam_requests()` turns one call into the (IAM action, resource ARN) pairs AWS authorizes;
- `allowed()` evaluates our generated policy documents (`animl_local.policies`) for one pair.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from unittest import mock
from urllib.parse import unquote

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from functions.platform.settings import Settings

# A ContextVar, not a global: the engine runs handlers on several threads at once (Map
# iterations, the stand-in API's server threads), and a new thread starts with an empty
# context, so moto's own calls from its interpreter threads are never taken for a function's.
# The price: calls from a thread a handler starts itself (a ThreadPoolExecutor, s3transfer's
# upload_fileobj) would go unrecorded. Handlers start none today (their pool is processes doing
# image work only); one that does must copy its context into the thread.
_running: ContextVar[str | None] = ContextVar("animl_running_function", default=None)

# AWS appends six random characters to a secret's name in its ARN; any fixed six will do for
# checking a policy, which must match them with a wildcard.
SECRET_SUFFIX = "-AbCdEf"


@dataclass
class AwsCall:
    function_name: str  # the deployed name, e.g. animl-ingest-test-inspect_archive
    service: str  # botocore's service name, e.g. "s3", "stepfunctions"
    operation: str  # e.g. "GetObject"
    params: dict[str, Any]
    # The error code AWS answered with, if any: some answers need a permission of their own.
    error_code: str | None = None
    # The function an event source mapping call concerns, as AWS resolves it (the answer's
    # FunctionArn): the value of its `lambda:FunctionArn` condition key.
    function_arn: str | None = None


class UnknownAwsCall(LookupError):
    """An operation `iam_requests` has no authorization rule for: add one, never skip it."""


# recording


@contextmanager
def running_function(name: str) -> Iterator[None]:
    """AWS calls made in this context (this thread) are made by the Lambda function `name`."""
    token = _running.set(name)
    try:
        yield
    finally:
        _running.reset(token)


def running_function_name() -> str | None:
    return _running.get()


@contextmanager
def recording_aws_calls() -> Iterator[list[AwsCall]]:
    """Record every botocore call made inside a running function; the list fills as they run.

    Calls are recorded before they are made, as AWS authorizes before it answers: a call that
    fails (NoSuchKey, QueueDoesNotExist) still needed its permission.
    """
    calls: list[AwsCall] = []
    # botocore's private hook: the one path every call takes.
    make_api_call = BaseClient._make_api_call  # type: ignore[attr-defined]

    def recording(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        function_name = _running.get()
        if function_name is None:
            return make_api_call(client, operation_name, api_params)
        call = AwsCall(function_name, client.meta.service_model.service_name, operation_name,
                       _without_payload(api_params))
        calls.append(call)
        try:
            answer = make_api_call(client, operation_name, api_params)
        except ClientError as exc:
            call.error_code = exc.response.get("Error", {}).get("Code")
            raise
        if call.service == "lambda" and isinstance(answer, dict):
            call.function_arn = answer.get("FunctionArn")
        return answer

    with mock.patch.object(BaseClient, "_make_api_call", recording):
        yield calls


def _without_payload(params: dict[str, Any]) -> dict[str, Any]:
    # Bodies do not bear on authorization; keeping them would hold every image in memory.
    return {key: value for key, value in params.items() if key != "Body"}


def chalice_name(function_name: str, stage: str) -> str | None:
    """The Chalice name of a deployed function of ours, None for another app's."""
    if function_name == Settings(stage=stage).ingest_delete_function_name:
        return "ingest_delete"  # published under the name the API's stopBatch invokes
    prefix = Settings(stage=stage).function_name("")
    return function_name.removeprefix(prefix) if function_name.startswith(prefix) else None


# what AWS authorizes for a call

Requests = list[tuple[str, str]]


def iam_requests(service: str, operation: str, params: dict[str, Any], region: str,
                 account: str, error_code: str | None = None) -> Requests:
    """The (IAM action, resource ARN) pairs AWS checks for one API call.

    `error_code`: the error the call answered, where the answer itself needs a permission.
    Raises UnknownAwsCall for an operation without a rule here, so that a new call is looked up
    in AWS's Service Authorization Reference instead of passing unchecked.
    """
    rule = _RULES.get(service)
    if rule is None:
        raise UnknownAwsCall(f"no IAM rule for service {service!r} ({operation})")
    requests = rule(operation, params, region, account)
    if service == "s3" and operation in ("GetObject", "HeadObject") and \
            error_code in _S3_MISSING_OBJECT:
        # AWS answers "no such key" only to a caller that may list the bucket; anyone else
        # gets AccessDenied, which the handler's `except NoSuchKey` does not catch.
        requests.append(("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}"))
    return requests


def _unknown(service: str, operation: str) -> UnknownAwsCall:
    return UnknownAwsCall(f"no IAM rule for {service} {operation}: add it to "
                          "animl_local.aws_calls from AWS's Service Authorization Reference")


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _copy_source(source: str | dict[str, Any]) -> tuple[str, str]:
    """(bucket, key) of CopySource, given as {"Bucket", "Key"} or "bucket/key[?versionId=]"."""
    if isinstance(source, dict):
        return source["Bucket"], source["Key"]
    bucket, _, key = source.lstrip("/").partition("/")
    return bucket, unquote(key.split("?versionId=", 1)[0])


def _s3_writes(params: dict[str, Any]) -> Requests:
    """What writing an object needs: PutObject, and the ACL or tags it sets with it."""
    arn = _object_arn(params["Bucket"], params["Key"])
    requests = [("s3:PutObject", arn)]
    if any(name in params for name in ("ACL", "GrantFullControl", "GrantRead", "GrantReadACP",
                                       "GrantWriteACP")):
        requests.append(("s3:PutObjectAcl", arn))
    if "Tagging" in params:
        requests.append(("s3:PutObjectTagging", arn))
    return requests


_S3_MISSING_OBJECT = {"NoSuchKey", "404", "NotFound"}  # GetObject's code, HeadObject's
_S3_WRITES = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
_S3_BUCKET_LISTING = {"ListObjectsV2", "ListObjects", "HeadBucket"}


def _s3(operation: str, params: dict[str, Any], region: str, account: str) -> Requests:
    if operation in ("GetObject", "HeadObject"):
        action = "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
        return [(action, _object_arn(params["Bucket"], params["Key"]))]
    if operation in _S3_WRITES:
        return _s3_writes(params)
    if operation in ("CopyObject", "UploadPartCopy"):
        source = _object_arn(*_copy_source(params["CopySource"]))
        return [*_s3_writes(params), ("s3:GetObject", source)]
    if operation == "AbortMultipartUpload":
        return [("s3:AbortMultipartUpload", _object_arn(params["Bucket"], params["Key"]))]
    if operation == "DeleteObject":
        action = "s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject"
        deleted = [(action, _object_arn(params["Bucket"], params["Key"]))]
        # A conditional delete on an ETag needs s3:GetObject too (AWS: conditional deletes).
        read = [("s3:GetObject", deleted[0][1])] if params.get("IfMatch", "*") != "*" else []
        return [*deleted, *read]
    if operation in _S3_BUCKET_LISTING:
        return [("s3:ListBucket", f"arn:aws:s3:::{params['Bucket']}")]
    raise _unknown("s3", operation)


def _ssm(operation: str, params: dict[str, Any], region: str, account: str) -> Requests:
    def arn(name: str) -> str:
        # A hierarchical name ("/api/url-dev") starts with "/"; a flat one gets it in the ARN.
        path = name if name.startswith("/") else f"/{name}"
        return f"arn:aws:ssm:{region}:{account}:parameter{path}"

    if operation == "GetParameter":
        return [("ssm:GetParameter", arn(params["Name"]))]
    if operation == "GetParameters":
        return [("ssm:GetParameters", arn(name)) for name in params["Names"]]
    raise _unknown("ssm", operation)


def _secretsmanager(operation: str, params: dict[str, Any], region: str,
                    account: str) -> Requests:
    if operation in ("GetSecretValue", "DescribeSecret"):
        secret = params["SecretId"]
        if not secret.startswith("arn:"):
            secret = f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}{SECRET_SUFFIX}"
        return [(f"secretsmanager:{operation}", secret)]
    raise _unknown("secretsmanager", operation)


# SQS's batch operations are authorized as their single-message action.
_SQS_ACTIONS = {
    "CreateQueue": "CreateQueue", "GetQueueUrl": "GetQueueUrl", "DeleteQueue": "DeleteQueue",
    "GetQueueAttributes": "GetQueueAttributes", "SetQueueAttributes": "SetQueueAttributes",
    "SendMessage": "SendMessage", "SendMessageBatch": "SendMessage",
    "ReceiveMessage": "ReceiveMessage", "DeleteMessage": "DeleteMessage",
    "DeleteMessageBatch": "DeleteMessage", "PurgeQueue": "PurgeQueue",
    "ChangeMessageVisibility": "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(operation: str, params: dict[str, Any], region: str, account: str) -> Requests:
    if operation == "ListQueues":
        return [("sqs:ListQueues", "*")]
    action = _SQS_ACTIONS.get(operation)
    if action is None:
        raise _unknown("sqs", operation)
    name = params.get("QueueName") or params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
    return [(f"sqs:{action}", f"arn:aws:sqs:{region}:{account}:{name}")]


# Event source mappings (Service Authorization Reference): creating and listing have no resource
# type ("*"); the others name the mapping, `event-source-mapping:<UUID>`.
_LAMBDA_UNSCOPED = {"CreateEventSourceMapping", "ListEventSourceMappings"}
_LAMBDA_MAPPING = {"DeleteEventSourceMapping", "GetEventSourceMapping",
                   "UpdateEventSourceMapping"}
# The mapping calls AWS evaluates the `lambda:FunctionArn` condition key for.
_LAMBDA_FUNCTION_ARN_KEY = {"CreateEventSourceMapping", "DeleteEventSourceMapping",
                            "UpdateEventSourceMapping"}


def _lambda(operation: str, params: dict[str, Any], region: str, account: str) -> Requests:
    if operation in _LAMBDA_UNSCOPED:
        return [(f"lambda:{operation}", "*")]
    if operation in _LAMBDA_MAPPING:
        return [(f"lambda:{operation}",
                 f"arn:aws:lambda:{region}:{account}:event-source-mapping:{params['UUID']}")]
    raise _unknown("lambda", operation)


def condition_context(call: AwsCall, region: str, account: str) -> dict[str, str]:
    """The condition keys AWS sets for `call` that our policies use (`lambda:FunctionArn`)."""
    if call.service != "lambda" or call.operation not in _LAMBDA_FUNCTION_ARN_KEY:
        return {}
    function = call.params.get("FunctionName") or call.function_arn
    if not function:
        return {}
    if not function.startswith("arn:"):
        function = f"arn:aws:lambda:{region}:{account}:function:{function}"
    return {"lambda:FunctionArn": function}


def _states(operation: str, params: dict[str, Any], region: str, account: str) -> Requests:
    if operation in ("StartExecution", "ListExecutions"):
        return [(f"states:{operation}", params["stateMachineArn"])]
    if operation in ("DescribeExecution", "StopExecution", "GetExecutionHistory"):
        return [(f"states:{operation}", params["executionArn"])]
    raise _unknown("states", operation)


def _sts(operation: str, params: dict[str, Any], region: str, account: str) -> Requests:
    if operation == "GetCallerIdentity":
        return [("sts:GetCallerIdentity", "*")]
    raise _unknown("sts", operation)


_RULES: dict[str, Callable[[str, dict[str, Any], str, str], Requests]] = {
    "s3": _s3, "ssm": _ssm, "secretsmanager": _secretsmanager, "sqs": _sqs, "lambda": _lambda,
    "stepfunctions": _states, "states": _states, "sts": _sts,
}


# policy evaluation

_UNSUPPORTED = ("NotAction", "NotResource", "Principal", "NotPrincipal")
# Condition operators this evaluator knows, and whether they read `*` and `?` as wildcards.
_OPERATORS = {"StringEquals": False, "StringLike": True, "ArnEquals": False, "ArnLike": True}


def allowed(policy: dict[str, Any], action: str, resource: str,
            context: dict[str, str] | None = None) -> bool:
    """Whether `policy` allows `action` on `resource`: an Allow matches and no Deny does.

    `context`: the request's condition keys. Enough IAM for our generated documents; a
    statement using more of it (other operators, NotAction, ...) raises rather than being
    judged wrongly.
    """
    statements = policy.get("Statement", [])
    verdicts = [statement["Effect"] for statement in _as_list(statements)
                if _matches(statement, action, resource, context or {})]
    return "Allow" in verdicts and "Deny" not in verdicts


def _matches(statement: dict[str, Any], action: str, resource: str,
             context: dict[str, str]) -> bool:
    unsupported = [key for key in _UNSUPPORTED if key in statement]
    if unsupported or statement.get("Effect") not in ("Allow", "Deny"):
        raise ValueError(f"statement not supported by this evaluator: {statement}")
    return (any(_wildcard_match(p, action, ignore_case=True)
                for p in _as_list(statement["Action"]))
            and any(_wildcard_match(p, resource, ignore_case=False)
                    for p in _as_list(statement["Resource"]))
            and _conditions_hold(statement, context))


def _conditions_hold(statement: dict[str, Any], context: dict[str, str]) -> bool:
    """Every operator, every key: one of its values matches. A key the request lacks fails
    (as in IAM for operators without `IfExists`)."""
    for operator, keys in statement.get("Condition", {}).items():
        if operator not in _OPERATORS:
            raise ValueError(f"condition operator not supported by this evaluator: {operator}")
        wildcards = _OPERATORS[operator]
        for key, values in keys.items():
            value = context.get(key)
            if value is None or not any(
                    _wildcard_match(v, value, ignore_case=False) if wildcards else v == value
                    for v in _as_list(values)):
                return False
    return True


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard_match(pattern: str, value: str, ignore_case: bool) -> bool:
    """IAM's wildcards: `*` any run of characters (":" and "/" too), `?` any one character."""
    # fnmatch.translate would also read [...] as a character class, which IAM does not.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.fullmatch(regex, value, flags) is not None
