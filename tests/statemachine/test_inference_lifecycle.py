"""Per-batch inference resources over the whole batch lifecycle, on the embedded engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from animl_local.engine import LOCAL_TUNING, EmbeddedStage
from animl_local.standin_api import Fault, StandinApi
from functions.batch import inference
from functions.platform.graphql_client import AnimlApiClient
from tests.conftest import API_KEY, TEST_SETTINGS, create_batch, jpeg_bytes, zip_bytes
from tests.leftovers import eventually
from tests.statemachine.test_ingest_batch_on_engine import (
    inference_resources,
    states_entered,
    upload,
)

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow


def clients(stage: EmbeddedStage) -> inference.Clients:
    return inference.Clients(sqs=stage.client("sqs"), lambda_=stage.client("lambda"))


def start(stage: EmbeddedStage, tmp_path: Path, batch_id: str) -> None:
    archive = tmp_path / f"{batch_id}.zip"
    archive.write_bytes(zip_bytes({"a.jpg": jpeg_bytes(tmp_path)}))
    stage.upload_archive(batch_id, str(archive))


def park_a_message_in_the_dlq(stage: EmbeddedStage, batch_id: str, image_id: str = "p:h"
                              ) -> None:
    """A request the model failed on for good, as the API's DLQ would hold it."""
    sqs = stage.client("sqs")
    url = sqs.create_queue(QueueName=stage.settings.inference_dlq_name(batch_id))["QueueUrl"]
    request = {"mlModelId": "megadetector_v5a", "event": "image-added",
               "image": {"_id": image_id, "batchId": batch_id}}
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(request))


def queue_depths(stage: EmbeddedStage, batch_id: str) -> dict[str, int]:
    """Messages waiting or in flight, in the batch's queue and in its DLQ."""
    sqs = stage.client("sqs")
    return {name: inference._depth(sqs, sqs.get_queue_url(QueueName=name)["QueueUrl"])
            for name in (stage.settings.inference_queue_name(batch_id),
                         stage.settings.inference_dlq_name(batch_id))}


def test_provisioning_twice_creates_one_set_of_resources(stage: EmbeddedStage) -> None:
    batch_id = "batch-11111111-2222-3333-4444-555555555555"
    first = inference.provision_inference(clients(stage), stage.settings, batch_id)
    second = inference.provision_inference(clients(stage), stage.settings, batch_id)
    assert first == second
    queues, mappings = inference_resources(stage)
    assert sorted(q.rsplit("/", 1)[-1] for q in queues) == [
        f"animl-ingest-test-{batch_id}", f"animl-ingest-test-{batch_id}-dlq"]
    assert mappings == [first["mappingUuid"]]
    attributes = stage.client("sqs").get_queue_attributes(
        QueueUrl=first["queueUrl"], AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "720"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] in ("5", 5)
    mapping = stage.client("lambda").get_event_source_mapping(UUID=first["mappingUuid"])
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionArn"].endswith(":animl-api-test-batchinference")
    assert inference.teardown_inference(clients(stage), stage.settings, batch_id) == {
        "mappings": 1, "queues": 2}
    assert inference.teardown_inference(clients(stage), stage.settings, batch_id) == {
        "mappings": 0, "queues": 0}
    assert inference_resources(stage) == ([], [])


def wait_until_it_waits_for_inference(stage: EmbeddedStage, batch_id: str,
                                      seconds: float = 30) -> None:
    """Until the execution sits in AwaitInference (stopped there, moto aborts it cleanly; a
    stop that races a running task can end FAILED in moto, never on AWS)."""
    def waiting() -> bool:
        events = stage.history(stage.execution_arn(batch_id))  # none yet: just started
        return bool(events) and events[-1]["type"] == "WaitStateEntered"

    eventually(waiting, seconds=seconds, poll=0.05, what="the batch waiting for inference")


@pytest.fixture
def impatient_stage(standin_api: StandinApi) -> Iterator[EmbeddedStage]:
    """A stage that gives up on inference after three seconds, polling every second."""
    settings = replace(TEST_SETTINGS, inference_max_wait_seconds=3)
    tuning = {**LOCAL_TUNING, "InferencePollSeconds": 1}
    with EmbeddedStage(settings, standin_api.url, API_KEY, tuning=tuning) as stage:
        yield stage


def test_a_dlq_message_holds_the_batch_until_the_maximum_wait(
        impatient_stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi) -> None:
    stage = impatient_stage
    batch_id = create_batch(api_client, serial="CAM-1")
    park_a_message_in_the_dlq(stage, batch_id)

    start(stage, tmp_path, batch_id)
    result = stage.wait_for_execution(batch_id, timeout_seconds=60)

    assert result["status"] == "SUCCEEDED"
    entered = states_entered(stage, result["executionArn"])
    assert entered[-2:] == ["TeardownInference", "MarkProcessingEnd"]
    assert entered.count("CheckInferenceQueues") >= 3
    batch = standin_api.store.batch(batch_id)
    [error] = batch["errors"]
    assert "did not finish within 3 s" in error["error"]
    assert "1 in the dead-letter queue" in error["error"]
    assert batch["processingEnd"] >= batch["ingestionComplete"]
    assert inference_resources(stage) == ([], [])


def test_stopping_a_batch_through_stop_batch_makes_ingest_delete_release_it(
        polling_stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi) -> None:
    from animl_local.cli import main

    stage = polling_stage
    batch_id = create_batch(api_client, serial="CAM-1")
    park_a_message_in_the_dlq(stage, batch_id)  # keeps it waiting for inference
    start(stage, tmp_path, batch_id)
    wait_until_it_waits_for_inference(stage, batch_id)

    assert main(["stop", batch_id, "--stage", "test"]) == 0
    result = stage.wait_for_execution(batch_id)
    standin_api.aws.wait_for_invocations()  # IngestDelete runs asynchronously, as on AWS

    assert result["status"] == "ABORTED"
    assert inference_resources(stage) == ([], [])
    # The service marked it and invoked the one name its role may invoke.
    assert stage.invocations.counts[stage.settings.ingest_delete_function_name] == 1
    batch = standin_api.store.batch(batch_id)
    assert batch["stoppingInitiated"] and batch["processingEnd"]
    assert batch["errors"] == []  # a requested stop is not an error


def a_batch_failed_at_processing_start(stage: EmbeddedStage, standin_api: StandinApi,
                                       api_client: AnimlApiClient, tmp_path: Path) -> str:
    """A batch whose inference resources exist and whose execution failed (the API was down)."""
    batch_id = create_batch(api_client, serial="CAM-1")
    standin_api.faults.append(Fault("updateBatch", 503, body_contains="processingStart"))
    result = upload(stage, tmp_path, batch_id, zip_bytes({"a.jpg": jpeg_bytes(tmp_path)}))
    standin_api.faults.clear()
    assert result["status"] == "FAILED"
    assert states_entered(stage, result["executionArn"])[-1] == "MarkProcessingStart"
    return batch_id


def test_a_failed_batch_keeps_its_resources_until_the_sweep(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    batch_id = a_batch_failed_at_processing_start(stage, standin_api, api_client, tmp_path)
    assert len(inference_resources(stage)[0]) == 2  # kept for a redrive

    # The hourly schedule leaves it: younger than the sweep age.
    assert stage.run_schedule("sweep_inference_resources") == {"swept": []}

    swept = sweep_now(stage)
    assert swept == [batch_id]
    assert inference_resources(stage) == ([], [])
    assert standin_api.store.batch(batch_id)["processingEnd"]


def sweep_now(stage: EmbeddedStage, later_seconds: float = 0) -> list[str]:
    """The sweep with no minimum age, run now or `later_seconds` from now."""
    from datetime import UTC, datetime, timedelta

    from functions.batch import lifecycle

    settings = replace(stage.settings, sweep_max_age_seconds=0)
    api = AnimlApiClient(
        boto3.client("ssm", region_name=settings.region).get_parameter(
            Name=settings.api_url_parameter)["Parameter"]["Value"], API_KEY)
    return lifecycle.sweep(stage.client("stepfunctions"), clients(stage), api,
                           stage.client("s3"), settings, "123456789012",
                           datetime.now(UTC) + timedelta(seconds=later_seconds))


def test_the_sweep_keeps_dead_lettered_requests_an_operator_could_still_redrive(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    from animl_local.webapp import redrive_batch

    batch_id = a_batch_failed_at_processing_start(stage, standin_api, api_client, tmp_path)
    # An image the service has (saved without a batch: no request of its own is sent).
    image_id = api_client.create_image({"Hash": "h1", "SerialNumber": "CAM-1",
                                        "DateTimeOriginal": "2024-06-01T12:00:00",
                                        "FileName": "a.jpg", "ImageBytes": 1000})["_id"]
    park_a_message_in_the_dlq(stage, batch_id, image_id)

    assert sweep_now(stage) == []  # old enough, but its DLQ holds a request
    assert len(inference_resources(stage)[0]) == 2
    assert standin_api.store.batch(batch_id).get("processingEnd") is None
    assert not standin_api.store.image_or_not_found(image_id)["labels"]

    # redriveBatch moves it back to the batch's queue, whose consumer takes it.
    redrive_batch(api_client, batch_id)
    eventually(lambda: not any(queue_depths(stage, batch_id).values()), seconds=10,
               what="the redriven request's consumption")
    assert standin_api.store.image_or_not_found(image_id)["labels"]


def test_the_sweep_releases_a_dead_letter_queue_once_its_retention_has_passed(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    batch_id = a_batch_failed_at_processing_start(stage, standin_api, api_client, tmp_path)
    park_a_message_in_the_dlq(stage, batch_id)

    retention = stage.settings.inference_dlq_retention_seconds
    assert sweep_now(stage, later_seconds=retention - 3600) == []
    assert sweep_now(stage, later_seconds=retention + 1) == [batch_id]
    assert inference_resources(stage) == ([], [])
