"""S3 faults for soaks: handlers' S3 calls fail transiently, and botocore's retry answers."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from animl_local.aws_calls import running_function
from animl_local.s3_faults import S3_FAULT_KINDS, s3_faults
from functions.platform.runtime import AWS_CLIENT_CONFIG
from tests.conftest import REGION


@pytest.mark.slow  # botocore's retries back off for real: seconds of sleep
def test_handlers_s3_calls_fail_transiently_and_the_runtimes_retries_answer() -> None:
    with mock_aws(), s3_faults(rate=0.3, seed=4) as faults:
        s3 = boto3.session.Session().client("s3", region_name=REGION, config=AWS_CLIENT_CONFIG)
        s3.create_bucket(Bucket="soak-bucket",
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        assert faults.count() == 0  # outside a handler: left alone
        with running_function("animl-ingest-test-ingest_image_group"):
            for index in range(40):
                s3.put_object(Bucket="soak-bucket", Key=f"k{index}", Body=b"x")
                assert s3.get_object(Bucket="soak-bucket", Key=f"k{index}")["Body"].read() == b"x"
    assert faults.count() >= 10
    assert set(faults.injected) <= set(S3_FAULT_KINDS) and len(faults.injected) >= 2


def test_each_fault_is_an_error_s3_answers_when_busy() -> None:
    # `max_attempts` counts retries (one, after a backoff); `total_max_attempts` the attempts.
    once = Config(retries={"mode": "standard", "total_max_attempts": 1})
    codes = set()
    with mock_aws(), s3_faults(rate=1.0, seed=1):
        s3 = boto3.session.Session().client("s3", region_name=REGION, config=once)
        s3.create_bucket(Bucket="soak-bucket",
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        with running_function("f"):
            for _ in range(30):
                with pytest.raises(ClientError) as failed:
                    s3.get_object(Bucket="soak-bucket", Key="k")
                error = failed.value.response
                codes.add((error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Code"]))
    assert codes == set(S3_FAULT_KINDS.values())
