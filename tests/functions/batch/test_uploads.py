"""Dispatch of ingestion-bucket objects, and the batch's execution start."""

from __future__ import annotations

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


def test_a_second_start_for_the_same_batch_is_a_no_op() -> None:
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-west-2")
        iam = boto3.client("iam", region_name="us-west-2")
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        machine = sfn.create_state_machine(
            name="m", roleArn=role,
            definition='{"StartAt": "W", "States": {"W": {"Type": "Pass", "End": true}}}',
        )["stateMachineArn"]
        first = uploads.start_batch_execution(sfn, machine, BATCH, "bucket", f"{BATCH}.zip")
        # While it runs, the same name and input answer with the same execution (as on AWS);
        # after it ended, ExecutionAlreadyExists (see the engine test of a repeated event).
        second = uploads.start_batch_execution(sfn, machine, BATCH, "bucket", f"{BATCH}.zip")
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert first and first.endswith(f":{BATCH}")
    assert second in (None, first)
    assert [e["name"] for e in executions] == [BATCH]
