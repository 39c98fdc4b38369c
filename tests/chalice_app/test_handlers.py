"""The Chalice app's wiring: one S3 entry handler, one Lambda per state-machine task."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

from animl_local.standin_api import StandinApi
from animl_local.state_machine import function_placeholder, load_definition, placeholders
from chalice_app.application import app
from functions.batch.batch_steps import inspect_batch_archive
from functions.image.renditions import DECODE_BYTES_PER_PIXEL
from functions.platform import storage
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.runtime import reset_runtime, runtime
from functions.platform.settings import Settings
from tests.conftest import API_KEY, REGION, REPO, create_batch, jpeg_bytes, zip_bytes


@pytest.mark.slow  # a fresh interpreter
def test_one_object_created_handler_on_the_stage_ingestion_bucket() -> None:
    # Chalice reads the bucket when it loads the app, with the stage's environment variables;
    # a fresh interpreter shows what `chalice deploy --stage prod` would see.
    script = (
        "from chalice_app.application import app\n"
        "s3 = [e for e in app.event_sources if type(e).__name__ == 'S3EventConfig']\n"
        "print([(e.name, e.bucket, e.events) for e in s3])\n"
    )
    env = {**os.environ, "INGESTION_BUCKET": "animl-images-ingestion-prod"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == str(
        [("on_upload", "animl-images-ingestion-prod", ["s3:ObjectCreated:*"])])


def test_every_task_of_the_state_machine_is_a_lambda_function_of_the_app() -> None:
    names = {f.name for f in app.pure_lambda_functions} - {"ingest_delete"}  # the API calls it
    used = {p for p in placeholders(load_definition()) if p.endswith("FunctionArn")}
    assert used == {function_placeholder(n) for n in names}


def test_failed_executions_reach_the_status_change_handler() -> None:
    [rule] = [e for e in app.event_sources if type(e).__name__ == "CloudWatchEventConfig"]
    assert rule.event_pattern["source"] == ["aws.states"]
    assert set(rule.event_pattern["detail"]["status"]) == {"FAILED", "TIMED_OUT", "ABORTED"}


# The handlers themselves, as Chalice invokes them (chalice.test.Client): the stage's environment
# from .chalice/config.json, moto for AWS, the stand-in for the API.

@pytest.fixture
def dev_aws(standin_api: StandinApi) -> Iterator[Settings]:
    """What a deployed dev stage offers the handlers: buckets, the API's URL and key."""
    settings = Settings(stage="dev", region=REGION)
    reset_runtime()
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in settings.buckets:
            s3.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": REGION})
        boto3.client("ssm", region_name=REGION).put_parameter(
            Name=settings.api_url_parameter, Value=standin_api.url, Type="String")
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=settings.api_key_secret, SecretString=json.dumps({"apikey": API_KEY}))
        yield settings
    reset_runtime()


@pytest.fixture
def chalice_client(dev_aws: Settings) -> Iterator[Client]:
    with Client(app, stage_name="dev", project_dir=str(REPO)) as client:
        yield client


def test_an_s3_event_for_something_else_leaves_it_alone(
        chalice_client: Client, dev_aws: Settings, standin_api: StandinApi) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=dev_aws.ingestion_bucket, Key="notes.txt", Body=b"hello")
    event = chalice_client.events.generate_s3_event(bucket=dev_aws.ingestion_bucket,
                                                    key="notes.txt")
    chalice_client.lambda_.invoke("on_upload", event)
    assert s3.get_object(Bucket=dev_aws.ingestion_bucket, Key="notes.txt")["Body"].read() \
        == b"hello"
    assert standin_api.received == []  # nothing of it needed the API


def test_an_s3_event_for_a_lone_image_ingests_it_and_releases_the_source(
        chalice_client: Client, dev_aws: Settings, standin_api: StandinApi,
        tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    key = "cam-1/IMG_0001.JPG"
    s3.put_object(Bucket=dev_aws.ingestion_bucket, Key=key, Body=jpeg_bytes(tmp_path))
    event = chalice_client.events.generate_s3_event(bucket=dev_aws.ingestion_bucket, key=key)
    chalice_client.lambda_.invoke("on_upload", event)
    assert s3.list_objects_v2(Bucket=dev_aws.ingestion_bucket)["KeyCount"] == 0
    [image] = standin_api.store.images(None)
    assert image["originalFileName"] == "IMG_0001.jpg"  # the extension lower-cased, as always
    assert s3.list_objects_v2(Bucket=dev_aws.serving_bucket)["KeyCount"] == 3  # renditions


def test_the_mark_states_stamp_one_field_each(
        chalice_client: Client, api_client: AnimlApiClient, standin_api: StandinApi) -> None:
    batch_id = create_batch(api_client, serial="CAM-1")
    at = "2026-11-28T12:00:00.000Z"
    chalice_client.lambda_.invoke("update_batch_status", {
        "batchId": batch_id, "field": "uploadComplete", "at": at, "total": 3})
    chalice_client.lambda_.invoke("update_batch_status", {
        "batchId": batch_id, "field": "processingStart", "at": at})
    batch = standin_api.store.batch(batch_id)
    assert batch is not None
    assert (batch["total"], batch["uploadComplete"], batch["processingStart"]) == (3, at, at)

    with pytest.raises(ValueError, match="needs the batch's total"):  # a task failure
        chalice_client.lambda_.invoke("update_batch_status", {
            "batchId": batch_id, "field": "uploadComplete", "at": at})


def test_a_caught_error_is_recorded_with_its_message_only(
        chalice_client: Client, api_client: AnimlApiClient, standin_api: StandinApi) -> None:
    batch_id = create_batch(api_client, serial="CAM-1")
    cause = json.dumps({"errorType": "BadArchive", "errorMessage": "Bad archive: not a zip",
                        "stackTrace": ["..."]})
    chalice_client.lambda_.invoke("record_batch_error", {
        "batchId": batch_id, "error": {"Error": "BadArchive", "Cause": cause}})
    batch = standin_api.store.batch(batch_id)
    assert batch is not None
    assert [e["error"] for e in batch["errors"]] == ["Bad archive: not a zip"]


def test_a_groups_invocation_decodes_within_the_containers_budget(
        chalice_client: Client, dev_aws: Settings, standin_api: StandinApi,
        tmp_path: Path) -> None:
    batch_id = create_batch(AnimlApiClient(standin_api.url, API_KEY), serial="CAM-1")
    s3 = boto3.client("s3", region_name=REGION)
    key = f"{batch_id}.zip"
    s3.put_object(Bucket=dev_aws.ingestion_bucket, Key=key,
                  Body=zip_bytes({"IMG_0001.JPG": jpeg_bytes(tmp_path, size=(800, 600))}))
    inspect_batch_archive(s3, dev_aws, batch_id, dev_aws.ingestion_bucket, key)
    [item] = storage.get_json(s3, dev_aws.batch_work_bucket, storage.manifest_key(batch_id))
    event = {"batchId": batch_id, "item": item,
             "archive": {"Bucket": dev_aws.ingestion_bucket, "Key": key}}

    reply = chalice_client.lambda_.invoke("ingest_image_group", event)

    assert reply.payload["ingested"] == 1
    # An 800x600 photo is decoded whole (it is under the medium's 940): its bytes were held.
    assert runtime().decode_budget.peak_bytes == 800 * 600 * DECODE_BYTES_PER_PIXEL
