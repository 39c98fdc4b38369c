"""Least-privilege IAM policies, one per Lambda function and stage, written to `.chalice/`.

Chalice reads policy files as they are, so they are generated from the stage's names here (one
place for every bucket and queue name) and a test checks the files are current:

    python -m animl_local.policies   # rewrites .chalice/policy-<stage>-<function>.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions.platform.settings import APP_NAME, Settings

CHALICE_DIR = Path(__file__).resolve().parent.parent / ".chalice"
STAGES = ("dev", "prod")

LOGS = {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                      "logs:PutLogEvents"], "Resource": "arn:aws:logs:*:*:*"}


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


def _mappings() -> dict[str, Any]:
    # Event source mappings cannot be scoped by resource at creation time.
    return {"Effect": "Allow", "Action": ["lambda:CreateEventSourceMapping",
                                          "lambda:DeleteEventSourceMapping",
                                          "lambda:GetEventSourceMapping",
                                          "lambda:ListEventSourceMappings"], "Resource": "*"}


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
                      _objects(s.parking_lot_bucket, "PutObject"), *_api(s), start_batch],
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
            _queues(s, "CreateQueue", "GetQueueAttributes", "SetQueueAttributes"), _mappings()],
        "check_inference": [_queues(s, "GetQueueUrl", "GetQueueAttributes")],
        "teardown_inference": [inference_queues, _mappings(), *_api(s), *_batch_records(s)],
        "ingest_delete": [inference_queues, _mappings(), *_api(s), *_batch_records(s),
                          _executions(s, "DescribeExecution", "StopExecution")],
        "sweep_inference_resources": [
            inference_queues, {"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"},
            _mappings(), *_api(s), *_batch_records(s), _executions(s, "DescribeExecution")],
        "on_execution_status_change": [*_api(s), *_batch_records(s)],
    }


def policy_documents(stage: str) -> dict[str, dict[str, Any]]:
    settings = Settings(stage=stage)
    return {name: {"Version": "2012-10-17", "Statement": [LOGS, *statements]}
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
