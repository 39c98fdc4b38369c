"""The stage's CloudFormation stack: infrastructure/stage.yaml, filled in and applied by change set.

`render_template` puts the IngestBatch definition (the ASL with its placeholders filled, as
everywhere else) into the template; `apply` creates or updates the stack through a change set,
waits, and says what happened: created, updated, or unchanged. A failure names the resource that
failed and CloudFormation's reason for it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import ClientError, WaiterError

from animl_local.state_machine import (
    function_placeholder,
    load_definition,
    placeholders,
    render_definition,
)
from functions.platform.settings import APP_NAME, Settings

INFRASTRUCTURE_DIR = Path(__file__).resolve().parent.parent / "infrastructure"
TEMPLATE_PATH = INFRASTRUCTURE_DIR / "stage.yaml"
STAGE_SETTINGS_PATH = INFRASTRUCTURE_DIR / "stages.json"
# CloudFormation's limit for a template passed in the request (TemplateBody), in bytes.
TEMPLATE_BODY_MAX_BYTES = 51_200
# Stack parameters for moto in place of AWS: its server speaks plain HTTP, and it enforces a bucket
# policy's `Principal: *` Deny without evaluating the condition, so the TLS-only statement would
# deny the stage its own objects. Never for a stage of stages.json (a test holds them to it).
MOTO_PARAMETERS = {"RequireTls": "false"}
# What CloudFormation answers when a change set or update would change nothing.
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
ENDED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "ROLLBACK_COMPLETE", "UPDATE_ROLLBACK_COMPLETE",
         "CREATE_FAILED", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_FAILED", "DELETE_COMPLETE",
         "DELETE_FAILED")


class StackError(Exception):
    """The stack could not be applied; the message names the resource and the reason."""


def stack_name(settings: Settings) -> str:
    return f"{APP_NAME}-{settings.stage}"


def stage_settings(stage: str, path: Path = STAGE_SETTINGS_PATH) -> dict[str, Any]:
    """The stage's entry in infrastructure/stages.json (stack parameters, teardown rule)."""
    stages = json.loads(path.read_text())
    if stage not in stages:
        raise StackError(f"stage {stage!r} has no entry in infrastructure/stages.json "
                         f"(known: {', '.join(sorted(stages))}); add one to deploy it")
    return dict(stages[stage])


def function_arn(settings: Settings, account: str, function: str) -> str:
    """The ARN Chalice gives `function`, known before it deploys."""
    return (f"arn:aws:lambda:{settings.region}:{account}:function:"
            f"{settings.function_name(function)}")


def state_machine_functions(chalice_functions: list[str]) -> list[str]:
    """The Chalice functions the ASL invokes (those whose placeholder it uses)."""
    used = placeholders(load_definition())
    return sorted(name for name in chalice_functions if function_placeholder(name) in used)


def render_template(settings: Settings, function_arns: dict[str, str],
                    tuning: dict[str, Any] | None = None, path: Path = TEMPLATE_PATH) -> str:
    """The template as submitted: JSON, IngestBatch's definition filled in."""
    template = yaml.safe_load(path.read_text())
    machine = template["Resources"]["IngestBatch"]["Properties"]
    machine["DefinitionString"] = render_definition(function_arns, tuning)
    body = json.dumps(template, separators=(",", ":"))
    size = len(body.encode())
    if size > TEMPLATE_BODY_MAX_BYTES:
        raise StackError(f"the rendered template is {size} bytes, over "
                         f"CloudFormation's {TEMPLATE_BODY_MAX_BYTES} for a TemplateBody")
    return body


def stack_parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


def stack_status(cfn: Any, name: str) -> str | None:
    try:
        return str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def apply(cfn: Any, name: str, body: str, parameters: dict[str, str]) -> str:
    """Create or update the stack; returns "created", "updated" or "unchanged"."""
    status = stack_status(cfn, name)
    if status == "ROLLBACK_COMPLETE":
        # A first create that failed leaves an empty stack that can only be deleted.
        delete(cfn, name)
        status = None
    change_type = "CREATE" if status is None else "UPDATE"
    change_set = f"{name}-{change_type.lower()}"
    if status is not None:
        _drop_change_set(cfn, name, change_set)
    try:
        created = cfn.create_change_set(
            StackName=name, ChangeSetName=change_set, ChangeSetType=change_type,
            TemplateBody=body, Parameters=stack_parameters(parameters),
            Capabilities=["CAPABILITY_NAMED_IAM"])
    except ClientError as exc:
        if _says_no_changes(str(exc)):
            return "unchanged"
        raise StackError(f"stack {name}: {exc.response['Error']['Message']}") from None
    try:
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=created["Id"], WaiterConfig={"Delay": 2, "MaxAttempts": 150})
    except WaiterError:
        described = cfn.describe_change_set(ChangeSetName=created["Id"])
        reason = str(described.get("StatusReason", ""))
        cfn.delete_change_set(ChangeSetName=created["Id"])
        if _says_no_changes(reason):
            return "unchanged"
        raise StackError(f"stack {name}: change set failed: {reason}") from None
    cfn.execute_change_set(ChangeSetName=created["Id"])
    ended = wait_until_ended(cfn, name)
    if ended not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        raise StackError(f"stack {name} ended {ended}: {failure_reason(cfn, name)}")
    return "created" if change_type == "CREATE" else "updated"


def delete(cfn: Any, name: str) -> None:
    """Delete the stack (resources with DeletionPolicy Retain stay) and wait for it."""
    if stack_status(cfn, name) is None:
        return
    cfn.delete_stack(StackName=name)
    ended = wait_until_ended(cfn, name)
    if ended not in ("DELETE_COMPLETE", None):
        raise StackError(f"stack {name} ended {ended}: {failure_reason(cfn, name)}")


def wait_until_ended(cfn: Any, name: str, seconds: float = 3600) -> str | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = stack_status(cfn, name)
        if status is None or status in ENDED:
            return status
        time.sleep(2)
    raise StackError(f"stack {name} still in progress after {seconds:.0f} s")


def failure_reason(cfn: Any, name: str) -> str:
    """The first resource that failed, with CloudFormation's reason."""
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    for event in reversed(events):  # oldest first: the first failure caused the rest
        if str(event.get("ResourceStatus", "")).endswith("_FAILED") and \
                event.get("LogicalResourceId") != name:
            return (f"{event['LogicalResourceId']} ({event.get('ResourceType', '?')}): "
                    f"{event.get('ResourceStatusReason', 'no reason given')}")
    return "no resource reported a failure (see the stack's events)"


def _says_no_changes(message: str) -> bool:
    return any(phrase in message for phrase in NO_CHANGES)


def _drop_change_set(cfn: Any, name: str, change_set: str) -> None:
    # A change set left by an interrupted deploy would block one of the same name.
    for summary in cfn.list_change_sets(StackName=name).get("Summaries", []):
        if summary["ChangeSetName"] == change_set:
            cfn.delete_change_set(StackName=name, ChangeSetName=change_set)
