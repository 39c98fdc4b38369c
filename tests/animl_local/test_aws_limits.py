"""The embedded stage refuses what AWS refuses; its figures are AWS's own (its API models)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from animl_local import aws_limits
from animl_local.engine import ENGINE_CONFIG
from animl_local.lambda_adapter import handlers_serve_invocations
from functions.platform.aws_limits import (
    LAMBDA_ASYNC_PAYLOAD,
    LAMBDA_SYNC_PAYLOAD,
    S3_KEY,
    SQS_MESSAGE,
    STATE_PAYLOAD,
)
from tests.animl_local.test_lambda_adapter import MODULE, create

REGION = "us-west-2"
ROLE = "arn:aws:iam::123456789012:role/r"
BUCKET = "limits-test"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(config=ENGINE_CONFIG), aws_limits.enforced(), handlers_serve_invocations():
        boto3.client("iam", region_name=REGION).create_role(
            RoleName="r", AssumeRolePolicyDocument="{}")
        yield


def service_model(name: str) -> dict:
    return botocore.session.get_session().get_service_data(name)


# The figures, against AWS's API models as botocore ships them.

def test_the_state_payload_limit_is_the_step_functions_models() -> None:
    shapes = service_model("stepfunctions")["shapes"]
    assert shapes["SensitiveData"]["max"] == STATE_PAYLOAD.max_bytes  # inputs and outputs


def test_the_lambda_payload_limits_are_the_invoke_documentations() -> None:
    model = service_model("lambda")
    documentation = model["operations"]["Invoke"]["documentation"]
    assert f"synchronous invocations, the maximum payload size is " \
           f"{LAMBDA_SYNC_PAYLOAD.max_bytes // 2**20} MB" in documentation
    assert f"asynchronous invocations, the maximum payload size is " \
           f"{LAMBDA_ASYNC_PAYLOAD.max_bytes // 2**20} MB" in documentation


def test_the_sqs_message_limit_is_the_sqs_models() -> None:
    text = json.dumps(service_model("sqs"))
    assert f"up to {SQS_MESSAGE.max_bytes:,} bytes (1 MiB)" in text


# The refusals.

def test_s3_refuses_a_key_over_1024_bytes_of_utf8(aws: None) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key="k" * S3_KEY.max_bytes, Body=b"x")  # the limit: fine
    s3.put_object(Bucket=BUCKET, Key="s", Body=b"x")
    too_long = "é" * (S3_KEY.max_bytes // 2 + 1)  # 513 characters, 1,026 bytes
    calls = [
        lambda: s3.put_object(Bucket=BUCKET, Key=too_long, Body=b"x"),
        lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=too_long),
        lambda: s3.copy_object(Bucket=BUCKET, Key=too_long,
                               CopySource={"Bucket": BUCKET, "Key": "s"}),
    ]
    for call in calls:
        with pytest.raises(ClientError) as refused:
            call()
        assert refused.value.response["Error"]["Code"] == "KeyTooLongError"
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_lambda_refuses_requests_over_its_payload_limits(aws: None) -> None:
    create("echo", f"{MODULE}.echo")
    client = boto3.client("lambda", region_name=REGION)
    client.invoke(FunctionName="echo", InvocationType="Event",
                  Payload=json.dumps("x" * (LAMBDA_ASYNC_PAYLOAD.max_bytes - 2)).encode())
    for kind, limit in (("Event", LAMBDA_ASYNC_PAYLOAD), ("RequestResponse", LAMBDA_SYNC_PAYLOAD)):
        with pytest.raises(ClientError) as refused:
            client.invoke(FunctionName="echo", InvocationType=kind,
                          Payload=json.dumps("x" * limit.max_bytes).encode())
        assert refused.value.response["Error"]["Code"] == limit.error
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
        assert f"{limit.max_bytes}" in refused.value.response["Error"]["Message"]


def test_a_synchronous_response_over_6_mb_is_a_function_error(aws: None) -> None:
    """moto does this one itself; kept so that a moto that stops doing it is noticed."""
    create("echo", f"{MODULE}.echo")  # answers its event back, JSON-escaped: \\u00e9 is 6 bytes
    client = boto3.client("lambda", region_name=REGION)
    event = json.dumps("é" * 1_500_000, ensure_ascii=False).encode()  # 3 MB in, 9 MB out
    reply = client.invoke(FunctionName="echo", Payload=event)
    assert reply["FunctionError"] == "Unhandled"
    assert json.loads(reply["Payload"].read())["errorType"] == "Function.ResponseSizeTooLarge"


def test_sqs_counts_a_message_in_bytes(aws: None) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q", Attributes={"MaximumMessageSize": "262144"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a" * 262_144)
    with pytest.raises(ClientError) as refused:  # 131,073 characters, 262,146 bytes
        sqs.send_message(QueueUrl=url, MessageBody="é" * 131_073)
    assert "Message must be shorter than 262144 bytes" in str(refused.value)


def test_sqs_counts_a_batch_in_bytes(aws: None) -> None:
    """A batch's bodies together within SQS_MESSAGE's 1 MiB, in bytes (moto counted characters)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]  # MaximumMessageSize: 1 MiB, AWS's default
    quarter = SQS_MESSAGE.max_bytes // 4
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": "a" * quarter} for i in range(4)])  # exactly 1 MiB
    # 4 x 131,073 characters: 1 MiB + 8 bytes (AWS's code is AWS.SimpleQueueService.<shape>)
    with pytest.raises(sqs.exceptions.BatchRequestTooLong) as refused:
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": "é" * (quarter // 2 + 1)} for i in range(4)])
    assert f"{SQS_MESSAGE.max_bytes + 8} bytes" in refused.value.response["Error"]["Message"]


def ended(sfn: Any, execution_arn: str) -> dict:
    """The execution's description once it is no longer running."""
    for _ in range(400):
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("the execution did not end")


def test_a_task_input_over_256_kib_fails_the_execution(aws: None) -> None:
    """The task's parameters (here the input twice) over the limit: States.DataLimitExceeded,
    where moto passed them on to the function."""
    arn = create("measure", f"{MODULE}.measure")
    call = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
            "Parameters": {"FunctionName": arn,
                           "Payload": {"first.$": "$.text", "again.$": "$.text"}},
            "ResultSelector": {}}
    definition = {"StartAt": "Call", "States": {"Call": call}}
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition),
                                       roleArn=ROLE)["stateMachineArn"]

    def run(text_bytes: int) -> dict:
        started = sfn.start_execution(stateMachineArn=machine, name=f"run-{text_bytes}",
                                      input=json.dumps({"text": "x" * text_bytes}))
        return ended(sfn, started["executionArn"])

    with pytest.raises(ClientError) as refused:  # an execution's own input: refused at once
        run(STATE_PAYLOAD.max_bytes)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert run(120_000)["status"] == "SUCCEEDED"  # 240 KB sent
    failed = run(STATE_PAYLOAD.max_bytes // 2)  # twice that, with its JSON: over the limit
    assert (failed["status"], failed.get("error")) == ("FAILED", STATE_PAYLOAD.error)


def test_a_state_output_of_256_kib_passes_and_one_byte_more_fails(aws: None) -> None:
    """A state's output is measured as moto serialises it: exactly the limit is accepted, as on
    AWS (moto refused it), a byte more is States.DataLimitExceeded."""
    # Output {"a": text, "b": text}, and "p": "" beside them for an odd size.
    double = {"a.$": "$.text", "b.$": "$.text"}
    definition = {"StartAt": "Same", "States": {
        "Same": {"Type": "Pass", "Parameters": double, "End": True},
        "Over": {"Type": "Pass", "Parameters": {**double, "p": ""}, "End": True}}}
    sfn = boto3.client("stepfunctions", region_name=REGION)

    def run(start: str, text_bytes: int) -> dict:
        machine = sfn.create_state_machine(
            name=start, definition=json.dumps({**definition, "StartAt": start}),
            roleArn=ROLE)["stateMachineArn"]
        started = sfn.start_execution(stateMachineArn=machine,
                                      input=json.dumps({"text": "x" * text_bytes}))
        return ended(sfn, started["executionArn"])

    def size(output: dict) -> int:
        return len(to_json_str(output).encode())

    same = size({"a": "", "b": ""})  # 2 x text + this
    over = size({"a": "", "b": "", "p": ""})
    assert (STATE_PAYLOAD.max_bytes - same) % 2 == (STATE_PAYLOAD.max_bytes + 1 - over) % 2 == 0
    succeeded = run("Same", (STATE_PAYLOAD.max_bytes - same) // 2)
    assert succeeded["status"] == "SUCCEEDED"
    assert size(json.loads(succeeded["output"])) == STATE_PAYLOAD.max_bytes
    failed = run("Over", (STATE_PAYLOAD.max_bytes + 1 - over) // 2)
    assert (failed["status"], failed.get("error")) == ("FAILED", STATE_PAYLOAD.error)
