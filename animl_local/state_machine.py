"""The IngestBatch definition and its `${...}` placeholders, filled the same way everywhere.

Placeholders stand for whole JSON values (`"${RetryMaxAttempts}"` may become the number 3), so
the file on disk is valid JSON before and after filling.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from functions.platform.graphql_client import AnimlApiUnavailable
from functions.platform.settings import Settings

DEFINITION_PATH = Path(__file__).resolve().parent.parent / "statemachine" / "ingest_batch.asl.json"
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z0-9]+)\}$")

# A batch's createImage calls in flight at most (groups in flight times the entries each works
# at once): what the API has taken since the start, 200 groups of 8.
API_CALLS_IN_FLIGHT = 1600
# Timing and fan-out that AWS uses; the local runtime overrides them to run in seconds.
DEFAULT_TUNING: dict[str, Any] = {
    "RetryIntervalSeconds": 2,
    "RetryMaxAttempts": 4,
    "MapMaxConcurrency": API_CALLS_IN_FLIGHT // Settings(stage="any").group_concurrency,
    "InferencePollSeconds": 60,
}


# AWS's names for failures of the Lambda service itself (not of the function's code).
LAMBDA_SERVICE_ERRORS = ("Lambda.ServiceException", "Lambda.AWSLambdaException",
                         "Lambda.SdkClientException", "Lambda.TooManyRequestsException",
                         "Lambda.Unknown")
# What is worth a retry: the API unavailable, Lambda's own failures, and AWS calls that failed
# in transit or were answered with an error. Class names, so renaming an exception renames its
# retry too (Step Functions matches a function's error by its errorType, the class name).
TRANSIENT_ERRORS = (AnimlApiUnavailable.__name__, *LAMBDA_SERVICE_ERRORS, ClientError.__name__,
                    EndpointConnectionError.__name__, ReadTimeoutError.__name__,
                    ConnectionClosedError.__name__)


def retry_policies(tuning: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The ASL's two retry policies, each written once: `"Retry": "${TransientRetry}"` on every
    task whose failures may pass, `"${AnyErrorRetry}"` where any failure is worth another try."""
    def policy(errors: list[str]) -> list[dict[str, Any]]:
        return [{"ErrorEquals": errors, "IntervalSeconds": tuning["RetryIntervalSeconds"],
                 "MaxAttempts": tuning["RetryMaxAttempts"], "BackoffRate": 2.0}]
    return {"TransientRetry": policy(list(TRANSIENT_ERRORS)),
            "AnyErrorRetry": policy(["States.ALL"])}


def function_placeholder(function_name: str) -> str:
    """`ingest_image_group` -> `IngestImageGroupFunctionArn`."""
    return "".join(part.capitalize() for part in function_name.split("_")) + "FunctionArn"


def placeholders(definition: Any) -> set[str]:
    found: set[str] = set()

    def note(name: str) -> None:
        found.add(name)  # and leave the placeholder as it is

    _walk(definition, note)
    return found


def child_placeholders(definition: Any) -> set[str]:
    """Placeholders used inside Map item processors: what runs in the child workflows."""
    found: set[str] = set()
    for state in definition.get("States", {}).values():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            found |= placeholders(processor)
    return found


def fill(definition: Any, values: dict[str, Any]) -> Any:
    """A copy of `definition` with every placeholder replaced; KeyError names a missing one."""
    def value_of(name: str) -> Any:
        if name not in values:
            raise KeyError(f"no value for placeholder ${{{name}}}")
        return values[name]
    return _walk(definition, value_of)


def load_definition(path: Path = DEFINITION_PATH) -> dict[str, Any]:
    return json.loads(path.read_text())


def render_definition(function_arns: dict[str, str], tuning: dict[str, Any] | None = None,
                      path: Path = DEFINITION_PATH) -> str:
    """The ASL as a string for CreateStateMachine, from function names -> ARNs."""
    values = {**DEFAULT_TUNING, **(tuning or {})}
    values.update(retry_policies(values))
    values.update({function_placeholder(name): arn for name, arn in function_arns.items()})
    return json.dumps(fill(load_definition(path), values))


def _walk(node: Any, replace: Any) -> Any:
    if isinstance(node, dict):
        return {key: _walk(value, replace) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(value, replace) for value in node]
    if isinstance(node, str):
        match = _PLACEHOLDER.match(node)
        if match:
            replaced = replace(match.group(1))
            return node if replaced is None else replaced
    return node
