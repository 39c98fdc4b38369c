"""Dispatch of ingestion-bucket objects, and the batch's execution start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.batch import uploads

BATCH = "batch-1b4e28ba-2fa1-11d2-883f-0016d3cca427"


@pytest.mark.parametrize("key, kind", [
    (f"{BATCH}.zip", uploads.BATCH_ARCHIVE), (f"{BATCH}.ZIP", uploads.BATCH_ARCHIVE),
    ("cam/IMG_1.JPG", uploads.SINGLE_IMAGE), ("a.jpeg", uploads.SINGLE_IMAGE),
    ("a.PnG", uploads.SINGLE_IMAGE), ("clip.mp4", uploads.IGNORED), ("notes", uploads.IGNORED),
])
def test_uploads_dispatch_by_extension_in_any_case(key: str, kind: str) -> None:
    assert uploads.classify_upload(key) == kind


def test_the_batch_id_comes_from_the_archive_name() -> None:
    assert uploads.batch_id_from_key(f"{BATCH}.zip") == BATCH
    assert uploads.batch_id_from_key("holiday.zip") is None
    assert uploads.batch_id_from_key(f"nested/{BATCH}.zip") is None


@contextmanager
def state_machine() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-west-2")
        iam = boto3.client("iam", region_name="us-west-2")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(
            name="m", roleArn=role,
            definition='{"StartAt": "W", "States": {"W": {"Type": "Pass", "End": true}}}',
        )["stateMachineArn"]
        yield sfn, machine


def names(sfn: Any, machine: str) -> list[str]:
    return sorted(e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"])


def test_a_second_start_for_the_same_batch_is_a_no_op() -> None:
    with state_machine() as (sfn, machine):
        first = uploads.start_batch_execution(sfn, machine, BATCH, "bucket", f"{BATCH}.zip")
        # While it runs, the same name and input answer with the same execution (as on AWS);
        # after it ended, ExecutionAlreadyExists (see the engine test of a repeated event).
        second = uploads.start_batch_execution(sfn, machine, BATCH, "bucket", f"{BATCH}.zip")
        executions = names(sfn, machine)
    assert first and first.endswith(f":{BATCH}")
    assert second in (None, first)
    assert executions == [BATCH]


def test_the_same_upload_delivered_again_starts_one_execution_another_upload_its_own() -> None:
    first_etag, second_etag = "9b2cf535f27731c974343645a3985328", "c8fb6b7f7c1ff0e4e4f3e2b5-3"
    with state_machine() as (sfn, machine):
        start = lambda etag: uploads.start_batch_execution(  # noqa: E731
            sfn, machine, BATCH, "bucket", f"{BATCH}.zip", etag)
        first = start(first_etag)
        assert start(first_etag) in (None, first)  # S3 delivers an event at least once
        sfn.stop_execution(executionArn=first)  # ended: its name stays taken
        assert start(first_etag) is None
        second = start(second_etag)  # another upload under the same batch id
        assert start(second_etag) in (None, second)
        executions = names(sfn, machine)
        described = sfn.describe_execution(executionArn=second)
    expected = f"{BATCH}{uploads.UPLOAD_SUFFIX}c8fb6b7f7c1ff0e4e4f3e2b5"
    assert executions == sorted([BATCH, expected]) and len(expected) <= 80
    assert json.loads(described["input"])["archive"] == {
        "Bucket": "bucket", "Key": f"{BATCH}.zip", "ETag": second_etag}


def test_the_etag_comes_from_the_event_record() -> None:
    record = {"Records": [{"s3": {"bucket": {"name": "b"},
                                  "object": {"key": f"{BATCH}.zip", "eTag": "abc"}}}]}
    assert uploads.event_etag(record) == "abc"
    assert uploads.event_etag({"Records": [{"s3": {"object": {"key": "k"}}}]}) is None
