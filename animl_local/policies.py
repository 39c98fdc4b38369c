"""Least-privilege IAM policies, one per Lambda function and stage, written to `.chalice/`.

Chalice reads policy files as they are, so they are generated from the stage's names here (one
place for every bucket and queue name) and a test checks the files are current:

    python -m animl_local.policies   # rewrites .chalice/policy-<stage>-<function>.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from functions.platform.settings import APP_NAME, Settings

CHALICE_DIR = Path(__file__).resolve().parent.parent / ".chalice"
STAGES = ("dev", "prod")

class Unscoped(NamedTuple):
    reason: str
    condition_key: str | None = None  # what narrows the grant instead, if anything


# Every `"Resource": "*"` in a policy, and why AWS leaves no narrower choice (Service
# Authorization Reference: the action has no resource type). A test refuses any other `*`.
UNSCOPED_ACTIONS = {
    "sqs:ListQueues": Unscoped("no resource type: it lists the account's queues (by prefix)"),
    "lambda:ListEventSourceMappings": Unscoped("no resource type, no condition key; reads only"),
    "lambda:CreateEventSourceMapping": Unscoped(
        "no resource type; the condition limits it to the stage's batch inference function",
        condition_key="lambda:FunctionArn"),
}


def _logs(s: Settings, *functions: str) -> dict[str, Any]:
    """Writes to the function's own log group (`/aws/lambda/<deployed name>`), nothing else."""
    groups = [f"arn:aws:logs:*:*:log-group:/aws/lambda/{name}" for name in functions]
    return {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                          "logs:PutLogEvents"],
            # The group itself (CreateLogGroup), and its streams (`<group>:log-stream:<name>`).
            "Resource": [arn for group in groups for arn in (group, f"{group}:*")]}


def _objects(bucket: str, *actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": sorted(f"s3:{a}" for a in actions),
            "Resource": f"arn:aws:s3:::{bucket}/*"}


def _listing(bucket: str) -> dict[str, Any]:
    # Without ListBucket, a missing key answers AccessDenied instead of NoSuchKey.
    return {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"}


def _api(s: Settings) -> list[dict[str, Any]]:
    return [
        {"Effect": "Allow", "Action": "ssm:GetParameter",
         "Resource": f"arn:aws:ssm:*:*:parameter{s.api_url_parameter}"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": f"arn:aws:secretsmanager:*:*:secret:{s.api_key_secret}-*"},
    ]


def _queues(s: Settings, *actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": sorted(f"sqs:{a}" for a in actions),
            "Resource": f"arn:aws:sqs:*:*:{s.inference_queue_prefix}*"}


def inference_function_arn_pattern(s: Settings) -> str:
    return f"arn:aws:lambda:*:*:function:{s.inference_function_name}"


def _mappings(s: Settings, change: str) -> list[dict[str, Any]]:
    """Event source mappings from the batch's queue to the API's batch inference function only.

    AWS's Service Authorization Reference gives CreateEventSourceMapping no resource type and
    DeleteEventSourceMapping (and UpdateEventSourceMapping, unused here) the event source
    mapping's ARN, whose UUID says nothing of its function: both take the `lambda:FunctionArn`
    condition key, the function the mapping sends to. Listing has neither, and reads only.
    """
    to_inference = {"ArnLike": {"lambda:FunctionArn": inference_function_arn_pattern(s)}}
    resource = {"Create": "*", "Delete": "arn:aws:lambda:*:*:event-source-mapping:*"}[change]
    return [
        {"Effect": "Allow", "Action": f"lambda:{change}EventSourceMapping", "Resource": resource,
         "Condition": to_inference},
        {"Effect": "Allow", "Action": "lambda:ListEventSourceMappings", "Resource": "*"},
    ]


def _executions(s: Settings, *actions: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": sorted(f"states:{a}" for a in actions),
            "Resource": f"arn:aws:states:*:*:execution:{s.state_machine_name}:*"}


def _batch_records(s: Settings) -> list[dict[str, Any]]:
    """Ingest's own record of what it set on each batch (functions.batch.batch_record)."""
    return [_objects(s.batch_work_bucket, "GetObject", "PutObject"), _listing(s.batch_work_bucket)]


def function_statements(s: Settings) -> dict[str, list[dict[str, Any]]]:
    """What each function touches, and nothing else."""
    start_batch = {"Effect": "Allow", "Action": "states:StartExecution",
                   "Resource": f"arn:aws:states:*:*:stateMachine:{s.state_machine_name}"}
    inference_queues = _queues(s, "CreateQueue", "GetQueueUrl", "GetQueueAttributes",
                               "DeleteQueue")
    return {
        "on_upload": [_objects(s.ingestion_bucket, "GetObject", "DeleteObject"),
                      _listing(s.ingestion_bucket),
                      _objects(s.serving_bucket, "PutObject"),
                      _objects(s.dead_letter_bucket, "PutObject"),
                      _objects(s.parking_lot_bucket, "PutObject"), *_api(s), start_batch,
                      # which upload a batch's first execution ingests (a repeated event?)
                      _executions(s, "DescribeExecution")],
        "inspect_archive": [_objects(s.ingestion_bucket, "GetObject"),
                            _objects(s.batch_work_bucket, "PutObject")],
        "update_batch_status": [*_api(s), *_batch_records(s)],
        "record_batch_error": [*_api(s), *_batch_records(s)],
        "ingest_image_group": [
            _objects(s.ingestion_bucket, "GetObject"),
            _objects(s.batch_work_bucket, "GetObject", "PutObject"), _listing(s.batch_work_bucket),
            _objects(s.serving_bucket, "PutObject"),
            _objects(s.dead_letter_bucket, "PutObject", "AbortMultipartUpload"), *_api(s)],
        "summarize_batch": [*_batch_records(s), *_api(s)],
        "provision_inference": [
            _queues(s, "CreateQueue", "GetQueueAttributes", "SetQueueAttributes"),
            *_mappings(s, "Create")],
        "check_inference": [_queues(s, "GetQueueUrl", "GetQueueAttributes")],
        "teardown_inference": [inference_queues, *_mappings(s, "Delete"), *_api(s),
                               *_batch_records(s)],
        "ingest_delete": [inference_queues, *_mappings(s, "Delete"), *_api(s),
                          *_batch_records(s),
                          _executions(s, "DescribeExecution", "StopExecution")],
        "sweep_inference_resources": [
            inference_queues, {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"},
            *_mappings(s, "Delete"), *_api(s), *_batch_records(s),
            _executions(s, "DescribeExecution")],
        "on_execution_status_change": [*_api(s), *_batch_records(s)],
    }


def deployed_names(s: Settings, function: str) -> list[str]:
    """The Lambda functions that run under `function`'s role: itself, and for ingest_delete
    its copy `IngestDelete-<stage>` (animl_local.deploy publishes it with the same role)."""
    names = [s.function_name(function)]
    if function == "ingest_delete":
        names.append(s.ingest_delete_function_name)
    return names


def policy_documents(stage: str) -> dict[str, dict[str, Any]]:
    settings = Settings(stage=stage)
    return {name: {"Version": "2012-10-17",
                   "Statement": [_logs(settings, *deployed_names(settings, name)), *statements]}
            for name, statements in function_statements(settings).items()}


def policy_file_name(stage: str, function: str) -> str:
    return f"policy-{stage}-{function}.json"


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def write_policy_files(chalice_dir: Path = CHALICE_DIR) -> list[Path]:
    written = []
    for stage in STAGES:
        for function, document in policy_documents(stage).items():
            path = chalice_dir / policy_file_name(stage, function)
            path.write_text(render(document))
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write_policy_files():
        print(path.name)
    print(f"also set each function's iam_policy_file in {APP_NAME}'s .chalice/config.json")
