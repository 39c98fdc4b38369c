"""moto's Lambda invoke paths reach our Python handlers through the adapter."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from urllib.parse import unquote_plus

import boto3
import pytest
from moto import mock_aws

from animl_local.engine import ENGINE_CONFIG
from animl_local.lambda_adapter import handlers_serve_invocations, import_handler
from tests.animl_local import handlers_for_adapter_tests as handlers

REGION = "us-west-2"
MODULE = "tests.animl_local.handlers_for_adapter_tests"


def code() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("x.txt", "x")
    return buffer.getvalue()


@pytest.fixture
def aws() -> Iterator[None]:
    handlers.CALLS.clear()
    with mock_aws(config=ENGINE_CONFIG):
        boto3.client("iam", region_name=REGION).create_role(
            RoleName="r", AssumeRolePolicyDocument="{}")
        yield


def create(name: str, handler: str) -> str:
    return boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name, Runtime="python3.11", Handler=handler, Code={"ZipFile": code()},
        Role="arn:aws:iam::123456789012:role/r")["FunctionArn"]


def test_invoke_returns_the_handler_result(aws: None) -> None:
    create("echo", f"{MODULE}.echo")
    with handlers_serve_invocations() as log:
        reply = boto3.client("lambda", region_name=REGION).invoke(
            FunctionName="echo", Payload=json.dumps({"a": 1}).encode())
    assert "FunctionError" not in reply
    assert json.loads(reply["Payload"].read()) == {"got": {"a": 1}, "remainingMs": True}
    assert log.counts == {"echo": 1}


def test_an_exception_becomes_the_lambda_error_payload(aws: None) -> None:
    create("fail", f"{MODULE}.fail")
    with handlers_serve_invocations():
        reply = boto3.client("lambda", region_name=REGION).invoke(FunctionName="fail")
    assert reply["FunctionError"] == "Handled"
    payload = json.loads(reply["Payload"].read())
    assert payload["errorType"] == "DeliberateFailure"
    assert payload["errorMessage"] == "it went wrong on purpose"


def test_an_s3_notification_invokes_the_configured_handler(aws: None) -> None:
    arn = create("on-object", f"{MODULE}.echo")
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="adapter-test",
                     CreateBucketConfiguration={"LocationConstraint": REGION})
    notify = {"LambdaFunctionArn": arn, "Events": ["s3:ObjectCreated:*"]}
    s3.put_bucket_notification_configuration(
        Bucket="adapter-test",
        NotificationConfiguration={"LambdaFunctionConfigurations": [notify]})
    with handlers_serve_invocations():
        s3.put_object(Bucket="adapter-test", Key="some/key.zip", Body=b"x")
    (event, function_name), = handlers.CALLS
    assert function_name == "on-object"
    # S3 events carry URL-encoded keys; Chalice's S3Event decodes them.
    assert unquote_plus(event["Records"][0]["s3"]["object"]["key"]) == "some/key.zip"


def test_outside_the_context_moto_answers_as_before(aws: None) -> None:
    create("echo", f"{MODULE}.echo")
    boto3.client("lambda", region_name=REGION).invoke(FunctionName="echo", Payload=b"{}")
    assert handlers.CALLS == []


def test_import_handler_resolves_dotted_names() -> None:
    assert import_handler(f"{MODULE}.echo") is handlers.echo
    with pytest.raises(ModuleNotFoundError):
        import_handler("no_such_module.handler")
