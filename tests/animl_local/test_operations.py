"""Operators' commands on the embedded engine: re-drive, reprocess, replay, inspect."""

from __future__ import annotations

from pathlib import Path

import pytest

from animl_local import operations
from animl_local.cli import main
from animl_local.engine import EmbeddedStage
from animl_local.standin_api import Fault, StandinApi
from functions.platform.graphql_client import AnimlApiClient
from tests.conftest import create_batch, jpeg_bytes, zip_bytes
from tests.statemachine.test_ingest_batch_on_engine import (
    inference_resources,
    ingestion_objects,
    states_entered,
    upload,
)

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow


def batch_images(standin_api: StandinApi, batch_id: str) -> list[dict]:
    return standin_api.store.images(batch_id)


def dead_letter_keys(stage: EmbeddedStage) -> list[str]:
    listed = stage.client("s3").list_objects_v2(Bucket=stage.settings.dead_letter_bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_after_an_api_outage_a_redrive_ingests_every_image_exactly_once(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    group = stage.settings.group_max_entries
    members = {f"cam/IMG_{i:03d}.JPG": jpeg_bytes(tmp_path, seed=i, size=(320, 240))
               for i in range(group + 10)}
    batch_id = create_batch(api_client, serial="CAM-1")
    # The API fails for a stretch: it answers the first group's last image too late for the
    # client (past the test stage's 2 s timeout), and every image after it with a 503.
    names = list(members)
    standin_api.faults.append(Fault("createImage", 503, body_contains=names[group - 1],
                                    delay_seconds=3.0))
    standin_api.faults += [Fault("createImage", 503, body_contains=n) for n in names[group:]]

    failed = upload(stage, tmp_path, batch_id, zip_bytes(members))
    assert failed["status"] == "FAILED"
    assert len(batch_images(standin_api, batch_id)) == group - 1  # before the stretch

    standin_api.faults.clear()  # the API recovers
    assert main(["redrive", batch_id, "--stage", "test"]) == 0
    again = stage.wait_for_execution(batch_id)  # the same execution, resumed

    assert again["status"] == "SUCCEEDED"
    images = batch_images(standin_api, batch_id)
    assert sorted(i["path"] for i in images) == sorted(members)  # each exactly once
    # Retries found the images saved before the timeout: no E11000 recorded against the batch.
    assert not [e for e in standin_api.store.image_errors(batch_id) if "E11000" in e["error"]]
    assert dead_letter_keys(stage) == []
    assert inference_resources(stage) == ([], [])
    batch = standin_api.store.batch(batch_id)
    assert batch["processingEnd"] and batch["total"] == len(members)


@pytest.mark.parametrize("failed_state, field", [("MarkIngestionComplete", "ingestionComplete"),
                                                  ("MarkProcessingEnd", "processingEnd")])
def test_a_batch_that_failed_after_its_archive_was_deleted_is_redriven_to_success(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path, failed_state: str, field: str) -> None:
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=i) for i in range(3)}
    batch_id = create_batch(api_client, serial="CAM-1")
    # updateBatch answers 503 for this one timestamp, through every retry the ASL makes.
    standin_api.faults.append(Fault("updateBatch", 503, body_contains=f'"{field}"'))

    failed = upload(stage, tmp_path, batch_id, zip_bytes(members))
    assert failed["status"] == "FAILED"
    arn = failed["executionArn"]
    assert states_entered(stage, arn)[-1] == failed_state
    assert ingestion_objects(stage) == []  # DeleteArchive ran: starting over could not work
    sfn = stage.client("stepfunctions")
    assert sfn.describe_execution(executionArn=arn)["redriveStatus"] == "REDRIVABLE"

    standin_api.faults.clear()
    assert main(["redrive", batch_id, "--stage", "test"]) == 0
    again = stage.wait_for_execution(batch_id)

    assert again["status"] == "SUCCEEDED", again.get("cause")
    assert again["redriveCount"] == 1
    entered = states_entered(stage, arn)
    assert entered.count("InspectArchive") == 1  # resumed, not started over
    assert entered.count(failed_state) == 2
    assert [e["name"] for e in operations.batch_executions(
        sfn, stage.state_machine_arn, batch_id)] == [batch_id]
    images = batch_images(standin_api, batch_id)
    assert sorted(i["path"] for i in images) == sorted(members)  # each exactly once
    assert dead_letter_keys(stage) == []
    batch = standin_api.store.batch(batch_id)
    assert batch["ingestionComplete"] and batch["processingEnd"]
    # Redriving a SUCCEEDED batch is refused as a usage error, nothing started.
    assert main(["redrive", batch_id, "--stage", "test"]) == 2


def test_reprocess_after_fixing_the_serial_override(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi) -> None:
    batch_id = create_batch(api_client)  # no override, and the images carry no serial
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=i, serial=None) for i in range(3)}
    members["empty.JPG"] = b""
    assert upload(stage, tmp_path, batch_id, zip_bytes(members))["status"] == "SUCCEEDED"
    assert len(dead_letter_keys(stage)) == 4
    assert batch_images(standin_api, batch_id) == []

    api_client.update_batch(batch_id, overrideSerial="FIXED-CAM")
    assert main(["reprocess", batch_id, "--reason", "Unknown Serial Number",
                 "--stage", "test"]) == 0

    assert len(batch_images(standin_api, batch_id)) == 3
    assert [k.split("/")[0] for k in dead_letter_keys(stage)] == ["EMPTY_FILE"]  # not asked for
    assert main(["reprocess", batch_id, "--stage", "test"]) == 0  # again: converges
    assert len(batch_images(standin_api, batch_id)) == 3


def test_reprocess_supplies_the_serial_and_names_the_reasons_present(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi, capsys) -> None:
    batch_id = create_batch(api_client)  # no override, and the images carry no serial
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=i, serial=None) for i in range(2)}
    members["empty.JPG"] = b""
    assert upload(stage, tmp_path, batch_id, zip_bytes(members))["status"] == "SUCCEEDED"
    capsys.readouterr()

    # A reason no image has: nothing reprocessed, the reasons present named, exit 3.
    assert main(["reprocess", batch_id, "--reason", "Unknown serial", "--serial", "CAM-7",
                 "--stage", "test"]) == 3
    err = capsys.readouterr().err
    assert '"Unknown serial"' in err
    assert '"EMPTY_FILE"' in err and '"Unknown Serial Number"' in err
    assert standin_api.store.batch(batch_id).get("overrideSerial") is None  # nothing changed
    assert len(dead_letter_keys(stage)) == 3

    assert main(["reprocess", batch_id, "--reason", "Unknown Serial Number", "--serial", "CAM-7",
                 "--stage", "test"]) == 0
    assert "2 reprocessed, 2 ingested" in capsys.readouterr().out
    assert [i["cameraId"] for i in batch_images(standin_api, batch_id)] == ["CAM-7", "CAM-7"]
    assert standin_api.store.batch(batch_id)["overrideSerial"] == "CAM-7"
    assert [k.split("/")[0] for k in dead_letter_keys(stage)] == ["EMPTY_FILE"]  # not asked for


def test_parked_images_are_replayed_into_ingestion(stage: EmbeddedStage,
                                                   standin_api: StandinApi,
                                                   tmp_path: Path) -> None:
    s3 = stage.client("s3")
    for i in range(2):
        s3.put_object(Bucket=stage.settings.parking_lot_bucket, Key=f"cam9/IMG_{i}.JPG",
                      Body=jpeg_bytes(tmp_path, seed=i, serial="WIRELESS-9"))
    assert main(["parking-lot", "replay", "--stage", "test"]) == 0
    assert s3.list_objects_v2(Bucket=stage.settings.parking_lot_bucket).get("Contents") is None
    images = standin_api.store.images(None)
    assert [i["cameraId"] for i in images] == ["WIRELESS-9", "WIRELESS-9"]


def test_executions_are_listed_described_and_timed(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        capsys) -> None:
    batch_id = create_batch(api_client, serial="CAM-1")
    upload(stage, tmp_path, batch_id, b"not a zip")
    capsys.readouterr()

    assert main(["executions", "list", "--status", "FAILED", "--stage", "test"]) == 0
    assert batch_id in capsys.readouterr().out
    assert main(["executions", "history", batch_id, "--stage", "test"]) == 0
    history = capsys.readouterr().out
    assert "InspectArchive" in history and "BatchFailed" in history and "FAILED" in history
    html = tmp_path / "describe.html"
    assert main(["executions", "describe", batch_id, "--stage", "test", "--html", str(html)]) == 0
    described = capsys.readouterr().out
    assert '"failedState"' in described and "BatchFailed" in described
    assert "Bad archive" in described  # the batch record's error
    assert "BatchFailed" in html.read_text()
    good_batch = create_batch(api_client, serial="CAM-1")
    upload(stage, tmp_path, good_batch, zip_bytes({"a.jpg": jpeg_bytes(tmp_path)}))
    assert main(["executions", "describe", good_batch, "--stage", "test", "--html",
                 str(html)]) == 0
    assert 'data-outcome="ingested"' in html.read_text()  # the batch report's images
    # with their thumbnails in the page (the serving bucket is private)
    assert '<img class="thumb" loading="eager" src="data:image/jpeg;base64,' in html.read_text()
