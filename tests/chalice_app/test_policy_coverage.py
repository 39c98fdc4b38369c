"""Every AWS call a handler really makes is one its own IAM policy allows.

moto does not enforce IAM, so the engine scenarios below run under `recording_aws_calls()` and
every recorded call is checked against the function's generated policy (animl_local.policies).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from animl_local.aws_calls import (
    SECRET_SUFFIX,
    AwsCall,
    UnknownAwsCall,
    allowed,
    chalice_name,
    condition_context,
    iam_requests,
    recording_aws_calls,
    running_function,
    running_function_name,
)
from animl_local.engine import ACCOUNT_ID, EmbeddedStage
from animl_local.policies import policy_documents
from animl_local.standin_api import Fault, StandinApi
from chalice_app import handlers
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.runtime import Runtime
from functions.platform.settings import Settings
from tests.conftest import REGION, TEST_SETTINGS, create_batch, jpeg_bytes, zip_bytes
from tests.statemachine.test_inference_lifecycle import (
    park_a_message_in_the_dlq,
    start,
    wait_until_it_waits_for_inference,
)
from tests.statemachine.test_ingest_batch_on_engine import upload

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow

STAGE = TEST_SETTINGS.stage
POLICIES = policy_documents(STAGE)

# The functions each scenario test must see making calls, so it cannot pass by recording nothing.
BATCH_FUNCTIONS = {"on_upload", "inspect_archive", "update_batch_status", "ingest_image_group",
                   "summarize_batch", "provision_inference", "check_inference",
                   "teardown_inference", "record_batch_error", "on_execution_status_change"}
LIFECYCLE_FUNCTIONS = {"on_execution_status_change", "sweep_inference_resources",
                       "ingest_delete", "update_batch_status"}


def policy_misses(calls: Iterable[AwsCall]) -> list[str]:
    """`function: action on resource (operation)` for each request its policy does not allow."""
    misses = set()
    for call in calls:
        name = chalice_name(call.function_name, STAGE)
        if name is None:
            continue  # the API's inference consumer: not ours, not our policy
        context = condition_context(call, REGION, ACCOUNT_ID)
        for action, resource in iam_requests(call.service, call.operation, call.params, REGION,
                                             ACCOUNT_ID, call.error_code):
            if name not in POLICIES or not allowed(POLICIES[name], action, resource, context):
                misses.add(f"{name}: {action} on {resource} ({call.service} {call.operation})")
    return sorted(misses)


def functions_seen(calls: Iterable[AwsCall]) -> set[str]:
    return {name for call in calls if (name := chalice_name(call.function_name, STAGE))}


def assert_within_policies(calls: list[AwsCall], expected_functions: set[str]) -> None:
    missing = expected_functions - functions_seen(calls)
    assert not missing, f"no AWS calls recorded from {sorted(missing)}"
    misses = policy_misses(calls)
    assert not misses, "calls their function's IAM policy does not allow:\n" + "\n".join(misses)


@pytest.fixture
def container_per_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """A runtime per function, as on AWS, where no two functions share a container.

    In this one process the handlers would share one runtime, and only the first function to
    reach the API would read its URL and key: every function must make those reads itself.
    Keyed by the settings too, so a changed environment is a new container (a redeploy).
    """
    runtimes: dict[tuple[str | None, Settings], Runtime] = {}
    lock = threading.Lock()

    def runtime_of_running_function() -> Runtime:
        settings = Settings.from_environment()
        with lock:
            key = (running_function_name(), settings)
            if key not in runtimes:
                runtimes[key] = Runtime(settings)
            return runtimes[key]

    monkeypatch.setattr(handlers, "runtime", runtime_of_running_function)


def test_the_scenarios_cover_every_function_with_a_policy() -> None:
    assert BATCH_FUNCTIONS | LIFECYCLE_FUNCTIONS == set(POLICIES)


@pytest.mark.usefixtures("container_per_function")
def test_batches_and_single_images_call_only_what_their_policies_allow(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path) -> None:
    good = jpeg_bytes(tmp_path, seed=1)
    archive = zip_bytes({"a/IMG_1.JPG": good, "a/IMG_2.JPG": jpeg_bytes(tmp_path, seed=2),
                         "b/IMG_1.JPG": good, "empty.jpg": b"",
                         "clip.mp4": b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
                         "notes.txt": b"field notes"})
    with recording_aws_calls() as calls:
        assert upload(stage, tmp_path, create_batch(api_client, serial="CAM-9"),
                      archive)["status"] == "SUCCEEDED"
        # Not a zip: the Catch path records the batch error, then the status-change event.
        assert upload(stage, tmp_path, create_batch(api_client),
                      b"this is not a zip archive at all")["status"] == "FAILED"
        # A single image straight into the ingestion bucket: the entry Lambda ingests it.
        image_key = "cam7/IMG_0001.JPG"
        stage.client("s3").put_object(Bucket=stage.settings.ingestion_bucket, Key=image_key,
                                      Body=jpeg_bytes(tmp_path, serial="WIRELESS-7"))
        # S3 delivers at least once: the same event again finds the image gone (NoSuchKey).
        redelivered = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": stage.settings.ingestion_bucket},
                                           "object": {"key": image_key}}}]}
        reply = stage.client("lambda").invoke(FunctionName=stage.function_arns["on_upload"],
                                              Payload=json.dumps(redelivered).encode())
        assert "FunctionError" not in reply

    assert_within_policies(calls, BATCH_FUNCTIONS)


@pytest.mark.usefixtures("container_per_function")
def test_failure_sweep_and_stop_call_only_what_their_policies_allow(
        polling_stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from animl_local.cli import main

    stage = polling_stage
    with recording_aws_calls() as calls:
        # The API fails at processingStart: the execution fails with its inference resources
        # kept, and the status-change handler records the error.
        failed = create_batch(api_client, serial="CAM-1")
        standin_api.faults.append(Fault("updateBatch", 503, body_contains="processingStart"))
        assert upload(stage, tmp_path, failed,
                      zip_bytes({"a.jpg": jpeg_bytes(tmp_path)}))["status"] == "FAILED"
        standin_api.faults.clear()

        # The hourly sweep leaves it (too young); with no minimum age it releases it.
        assert stage.run_schedule("sweep_inference_resources") == {"swept": []}
        with monkeypatch.context() as env:  # undone before the stage restores its environment
            env.setenv("SWEEP_MAX_AGE_SECONDS", "0")
            assert stage.run_schedule("sweep_inference_resources") == {"swept": [failed]}

        # A batch waiting for inference, stopped through stopBatch: the API invokes
        # IngestDelete-<stage>, and the abort's status-change event follows.
        stopped = create_batch(api_client, serial="CAM-1")
        park_a_message_in_the_dlq(stage, stopped)  # keeps it waiting for inference
        start(stage, tmp_path, stopped)
        wait_until_it_waits_for_inference(stage, stopped)
        assert main(["stop", stopped, "--stage", STAGE]) == 0
        assert stage.wait_for_execution(stopped, poll_seconds=0.05)["status"] == "ABORTED"
        assert standin_api.aws is not None
        standin_api.aws.wait_for_invocations()

    assert_within_policies(calls, LIFECYCLE_FUNCTIONS)


# the recorder, the evaluator and the authorization rules themselves


def test_only_calls_made_inside_a_function_in_its_thread_are_recorded() -> None:
    with mock_aws(), recording_aws_calls() as calls:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bucket-b",
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        with running_function("animl-ingest-test-on_upload"):
            with pytest.raises(s3.exceptions.NoSuchKey):
                s3.get_object(Bucket="bucket-b", Key="gone")
            # A thread started here (as moto's interpreter starts its own) is no one's.
            other = threading.Thread(target=lambda: s3.list_objects_v2(Bucket="bucket-b"))
            other.start()
            other.join()
        s3.head_bucket(Bucket="bucket-b")

    assert calls == [AwsCall("animl-ingest-test-on_upload", "s3", "GetObject",
                             {"Bucket": "bucket-b", "Key": "gone"}, error_code="NoSuchKey")]

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
     "Resource": "arn:aws:s3:::bucket-a/*"},
    {"Effect": "Allow", "Action": "sqs:Get*", "Resource": "arn:aws:sqs:*:*:queue-?"},
    {"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"},
]}


@pytest.mark.parametrize(("action", "resource", "expected"), [
    ("s3:GetObject", "arn:aws:s3:::bucket-a/any/depth/key.jpg", True),
    ("s3:putobject", "arn:aws:s3:::bucket-a/key", True),  # actions ignore case
    ("s3:GetObject", "arn:aws:s3:::Bucket-a/key", False),  # resources do not
    ("s3:GetObject", "arn:aws:s3:::bucket-a", False),  # the bucket is not an object
    ("s3:DeleteObject", "arn:aws:s3:::bucket-a/key", False),  # denied by omission
    ("s3:GetObject", "arn:aws:s3:::bucket-b/key", False),
    ("sqs:GetQueueUrl", "arn:aws:sqs:us-west-2:123456789012:queue-1", True),
    ("sqs:GetQueueAttributes", "arn:aws:sqs:us-west-2:123456789012:queue-12", False),  # ? is one
    ("sqs:DeleteQueue", "arn:aws:sqs:us-west-2:123456789012:queue-1", False),
    ("sts:GetCallerIdentity", "*", True),
])
def test_allowed_matches_actions_and_resources_as_iam_does(action: str, resource: str,
                                                           expected: bool) -> None:
    assert allowed(POLICY, action, resource) is expected


def test_an_explicit_deny_wins_and_unsupported_statements_raise() -> None:
    deny = {"Statement": [*POLICY["Statement"], {"Effect": "Deny", "Action": "s3:*",
                                                 "Resource": "arn:aws:s3:::bucket-a/secret/*"}]}
    assert not allowed(deny, "s3:GetObject", "arn:aws:s3:::bucket-a/secret/x")
    assert allowed(deny, "s3:GetObject", "arn:aws:s3:::bucket-a/open/x")
    conditional = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                                  "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}
    with pytest.raises(ValueError, match="not supported"):
        allowed(conditional, "s3:GetObject", "arn:aws:s3:::bucket-a/x")


MAPPINGS_TO_F = {"Statement": [
    {"Effect": "Allow", "Action": "lambda:CreateEventSourceMapping", "Resource": "*",
     "Condition": {"ArnLike": {"lambda:FunctionArn": "arn:aws:lambda:*:*:function:f"}}}]}


@pytest.mark.parametrize(("context", "expected"), [
    ({"lambda:FunctionArn": "arn:aws:lambda:us-west-2:123456789012:function:f"}, True),
    ({"lambda:FunctionArn": "arn:aws:lambda:us-west-2:123456789012:function:other"}, False),
    ({"lambda:FunctionArn": "arn:aws:lambda:us-west-2:123456789012:function:f2"}, False),
    ({}, False),  # a key the request lacks fails the condition, as in IAM
])
def test_a_condition_allows_only_the_requests_whose_keys_match(context: dict,
                                                               expected: bool) -> None:
    assert allowed(MAPPINGS_TO_F, "lambda:CreateEventSourceMapping", "*", context) is expected


def test_mapping_calls_carry_the_function_they_concern() -> None:
    created = AwsCall("x", "lambda", "CreateEventSourceMapping",
                      {"FunctionName": "f", "EventSourceArn": "arn:aws:sqs:r:a:q"})
    deleted = AwsCall("x", "lambda", "DeleteEventSourceMapping", {"UUID": "u-1"},
                      function_arn="arn:aws:lambda:us-west-2:123456789012:function:g")
    listed = AwsCall("x", "lambda", "ListEventSourceMappings", {"FunctionName": "f"})
    assert condition_context(created, REGION, ACCOUNT_ID) == {
        "lambda:FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:f"}
    assert condition_context(deleted, REGION, ACCOUNT_ID) == {
        "lambda:FunctionArn": "arn:aws:lambda:us-west-2:123456789012:function:g"}
    assert condition_context(listed, REGION, ACCOUNT_ID) == {}


@pytest.mark.parametrize(("service", "operation", "params", "expected"), [
    ("s3", "HeadObject", {"Bucket": "b", "Key": "k/1.jpg"},
     [("s3:GetObject", "arn:aws:s3:::b/k/1.jpg")]),
    ("s3", "CompleteMultipartUpload", {"Bucket": "b", "Key": "k", "UploadId": "u"},
     [("s3:PutObject", "arn:aws:s3:::b/k")]),
    ("s3", "UploadPartCopy", {"Bucket": "b", "Key": "k", "UploadId": "u", "PartNumber": 1,
                              "CopySource": {"Bucket": "src", "Key": "a.zip"}},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObject", "arn:aws:s3:::src/a.zip")]),
    ("s3", "CopyObject", {"Bucket": "b", "Key": "k", "CopySource": "src/a%20b.zip"},
     [("s3:PutObject", "arn:aws:s3:::b/k"), ("s3:GetObject", "arn:aws:s3:::src/a b.zip")]),
    ("s3", "DeleteObject", {"Bucket": "b", "Key": "a.zip"},
     [("s3:DeleteObject", "arn:aws:s3:::b/a.zip")]),
    # A conditional delete on an ETag also needs s3:GetObject (AWS: conditional deletes).
    ("s3", "DeleteObject", {"Bucket": "b", "Key": "a.zip", "IfMatch": '"e"'},
     [("s3:DeleteObject", "arn:aws:s3:::b/a.zip"), ("s3:GetObject", "arn:aws:s3:::b/a.zip")]),
    ("s3", "ListObjectsV2", {"Bucket": "b", "Prefix": "batches/"},
     [("s3:ListBucket", "arn:aws:s3:::b")]),
    ("ssm", "GetParameter", {"Name": "/api/url-test"},
     [("ssm:GetParameter", "arn:aws:ssm:us-west-2:123456789012:parameter/api/url-test")]),
    ("secretsmanager", "GetSecretValue", {"SecretId": "api-key-test"},
     [("secretsmanager:GetSecretValue",
       f"arn:aws:secretsmanager:us-west-2:123456789012:secret:api-key-test{SECRET_SUFFIX}")]),
    ("sqs", "DeleteQueue", {"QueueUrl": "https://sqs.us-west-2.amazonaws.com/123456789012/q-dlq"},
     [("sqs:DeleteQueue", "arn:aws:sqs:us-west-2:123456789012:q-dlq")]),
    ("sqs", "ListQueues", {"QueueNamePrefix": "q"}, [("sqs:ListQueues", "*")]),
    ("stepfunctions", "StopExecution", {"executionArn": "arn:aws:states:r:a:execution:m:x"},
     [("states:StopExecution", "arn:aws:states:r:a:execution:m:x")]),
    ("lambda", "ListEventSourceMappings", {"FunctionName": "f"},
     [("lambda:ListEventSourceMappings", "*")]),
    ("lambda", "DeleteEventSourceMapping", {"UUID": "u-1"},
     [("lambda:DeleteEventSourceMapping",
       "arn:aws:lambda:us-west-2:123456789012:event-source-mapping:u-1")]),
])
def test_iam_requests_follow_aws_authorization(service: str, operation: str,
                                               params: dict, expected: list) -> None:
    assert iam_requests(service, operation, params, REGION, ACCOUNT_ID) == expected


def test_a_missing_object_answers_no_such_key_only_to_who_may_list_the_bucket() -> None:
    for operation, code in (("GetObject", "NoSuchKey"), ("HeadObject", "404")):
        assert iam_requests("s3", operation, {"Bucket": "b", "Key": "k"}, REGION, ACCOUNT_ID,
                            error_code=code) == [("s3:GetObject", "arn:aws:s3:::b/k"),
                                                 ("s3:ListBucket", "arn:aws:s3:::b")]


@pytest.mark.parametrize(("service", "operation"), [("s3", "PutBucketPolicy"),
                                                    ("dynamodb", "GetItem")])
def test_an_operation_without_a_rule_raises(service: str, operation: str) -> None:
    with pytest.raises(UnknownAwsCall, match=operation):
        iam_requests(service, operation, {}, REGION, ACCOUNT_ID)


def test_deployed_names_map_to_chalice_names() -> None:
    assert chalice_name("animl-ingest-test-inspect_archive", STAGE) == "inspect_archive"
    assert chalice_name("IngestDelete-test", STAGE) == "ingest_delete"
    assert chalice_name("animl-api-test-batchinference", STAGE) is None
