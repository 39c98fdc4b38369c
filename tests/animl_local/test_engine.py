"""The embedded stage is built by the code that deploys a real one: the stage's stack, on moto."""

from __future__ import annotations

import copy
import hashlib
import io

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto.core import config as moto_config

from animl_local import engine, stack
from animl_local.botocore_models import botocore_models_parsed_once
from animl_local.engine import EmbeddedStage


@pytest.mark.slow  # a whole embedded stage
def test_the_embedded_stage_is_the_stages_stack_on_moto(stage: EmbeddedStage) -> None:
    settings = stage.settings
    cfn = stage.client("cloudformation")
    name = stack.stack_name(settings)
    [described] = cfn.describe_stacks(StackName=name)["Stacks"]
    assert described["StackStatus"] == "CREATE_COMPLETE"
    made = {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    # The buckets, the state machine and its role are the stack's, with the template's settings.
    assert {made[k] for k in ("IngestionBucket", "ServingBucket", "DeadLetterBucket",
                              "ParkingLotBucket", "BatchesBucket")} == set(settings.buckets)
    machine = stage.client("stepfunctions").describe_state_machine(
        stateMachineArn=stage.state_machine_arn)
    assert machine["roleArn"].endswith(f"role/{made['IngestBatchRole']}")
    s3 = stage.client("s3")
    cors = s3.get_bucket_cors(Bucket=settings.ingestion_bucket)["CORSRules"]
    assert cors[0]["ExposeHeaders"] == ["ETag"]
    assert s3.get_public_access_block(Bucket=settings.serving_bucket)[
        "PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    # The parameters the Animl API reads, made by the stack.
    ssm = stage.client("ssm")
    assert ssm.get_parameter(Name=made["IngestionBucketParameter"])["Parameter"]["Value"] == \
        settings.ingestion_bucket
    # The state machine invokes the functions the engine made (under Chalice's names).
    assert all(arn in machine["definition"] for name, arn in stage.function_arns.items()
               if name in stack.state_machine_functions(sorted(stage.function_arns)))


def test_a_moto_server_leaves_moto_s_global_config_as_it_found_it() -> None:
    # The server's /moto-api/config is moto's process-wide config: left on, every later
    # in-process mock would run state machines (an ended execution's name then answers again).
    before = copy.deepcopy(moto_config.default_user_config)

    with engine._moto_server(0):
        assert moto_config.default_user_config["stepfunctions"]["execute_state_machine"]

    assert moto_config.default_user_config == before


def test_sessions_made_while_the_stage_runs_share_one_loader(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    # Without the tests' own sharing (conftest), each session has a loader of its own.
    monkeypatch.setattr(botocore.session, "create_loader", botocore.loaders.create_loader)

    def loader() -> object:
        return boto3.session.Session()._session.get_component("data_loader")

    assert loader() is not loader()
    with botocore_models_parsed_once():
        assert loader() is loader()
    assert loader() is not loader()


@pytest.mark.slow  # a whole embedded stage
def test_a_browser_part_goes_with_an_unsigned_payload_and_arrives_whole(
        stage: EmbeddedStage) -> None:
    """As a PUT to a presigned URL: UNSIGNED-PAYLOAD, so no SHA-256 of each 100 MB part."""
    sent: list[bytes] = []
    stage._session.events.register(  # copied into the clients made after this
        "before-send.s3.UploadPart",
        lambda request, **_: sent.append(request.headers["x-amz-content-sha256"]))
    s3, bucket, key = stage.client("s3"), stage.settings.ingestion_bucket, "batch-part.zip"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    data = bytes(range(256)) * 4096
    etag = stage.put_part({"batch": "batch-part", "multipartUploadId": upload}, 1,
                          io.BytesIO(data))
    assert sent == [b"UNSIGNED-PAYLOAD"]
    assert etag.strip('"') == hashlib.md5(data).hexdigest()
    [part] = s3.list_parts(Bucket=bucket, Key=key, UploadId=upload)["Parts"]
    assert (part["ETag"], part["Size"]) == (etag, len(data))
    s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload)
