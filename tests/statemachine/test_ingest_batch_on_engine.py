"""The real ASL on the embedded engine, end to end, asserted on the execution history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from animl_local.engine import EmbeddedStage
from animl_local.standin_api import Fault, StandinApi
from functions.batch.uploads import upload_execution_name
from functions.platform.graphql_client import AnimlApiClient
from tests.conftest import API_KEY, create_batch, jpeg_bytes, zip_bytes
from tests.leftovers import eventually

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow

POLL = ["AwaitInference", "CheckInferenceQueues", "InferenceFinished"]
HAPPY_PATH = ["InspectArchive", "MarkUploadComplete", "HasImages", "ProvisionInference",
              "MarkProcessingStart", "IngestImages", "SummarizeOutcomes", "DeleteArchive",
              "MarkIngestionComplete", "StartAwaitingInference", *POLL, *POLL,
              "TeardownInference", "MarkProcessingEnd"]  # two idle polls in the test stage


def upload(stage: EmbeddedStage, tmp_path: Path, batch_id: str, data: bytes) -> dict:
    archive = tmp_path / f"{batch_id}.zip"
    archive.write_bytes(data)
    stage.upload_archive(batch_id, str(archive))
    return stage.wait_for_execution(batch_id, poll_seconds=0.05, timeout_seconds=120)


def states_entered(stage: EmbeddedStage, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in stage.history(arn)
            if e["type"].endswith("StateEntered")]


def inference_resources(stage: EmbeddedStage) -> tuple[list[str], list[str]]:
    """(queue URLs, mapping UUIDs) of every batch of the stage."""
    queues = stage.client("sqs").list_queues(
        QueueNamePrefix=stage.settings.inference_queue_prefix).get("QueueUrls", [])
    mappings = stage.client("lambda").list_event_source_mappings(
        FunctionName=stage.settings.inference_function_name)["EventSourceMappings"]
    return queues, [m["UUID"] for m in mappings]


def ingestion_objects(stage: EmbeddedStage) -> list[str]:
    listed = stage.client("s3").list_objects_v2(Bucket=stage.settings.ingestion_bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_small_batch_walks_every_state_and_is_recorded(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi) -> None:
    batch_id = create_batch(api_client, serial="CAM-9")
    members = {f"cam/IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=i) for i in range(3)}
    members["cam/notes.txt"] = b"field notes"

    result = upload(stage, tmp_path, batch_id, zip_bytes(members))

    assert result["status"] == "SUCCEEDED"
    assert states_entered(stage, result["executionArn"]) == HAPPY_PATH
    batch = standin_api.store.batch(batch_id)
    assert batch["total"] == 3
    assert (batch["uploadComplete"] <= batch["processingStart"] <= batch["ingestionComplete"]
            <= batch["processingEnd"])
    [not_an_image] = batch["errors"]  # notes.txt: kept in dead-letter, said once
    assert not_an_image["error"].startswith("1 file(s) in the archive are not images")
    images = standin_api.store.images(batch_id)
    assert sorted(i["path"] for i in images) == sorted(p for p in members if p.endswith(".JPG"))
    assert all(i["labels"] for i in images)  # every saved image went through inference
    assert inference_resources(stage) == ([], [])
    serving = stage.client("s3").list_objects_v2(Bucket=stage.settings.serving_bucket)
    assert len(serving["Contents"]) == 3 * 3  # original, medium, small each
    assert ingestion_objects(stage) == []  # the archive is deleted once all is stored


def test_a_repeated_upload_event_starts_nothing_new(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path) -> None:
    batch_id = create_batch(api_client, serial="CAM-9")
    data = zip_bytes({"a.jpg": jpeg_bytes(tmp_path)})
    first = upload(stage, tmp_path, batch_id, data)
    again = upload(stage, tmp_path, batch_id, data)  # same key: S3 delivers the event again

    assert first["status"] == again["status"] == "SUCCEEDED"
    executions = stage.client("stepfunctions").list_executions(
        stateMachineArn=stage.state_machine_arn)["executions"]
    assert [e["name"] for e in executions] == [batch_id]
    assert stage.invocations.counts["animl-ingest-test-on_upload"] == 2


def test_an_empty_zip_is_processed_at_upload_time(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi) -> None:
    batch_id = create_batch(api_client)
    result = upload(stage, tmp_path, batch_id, zip_bytes({}))

    assert result["status"] == "SUCCEEDED"
    assert states_entered(stage, result["executionArn"]) == [
        "InspectArchive", "MarkUploadComplete", "HasImages", "SummarizeEmptyBatch",
        "DeleteEmptyArchive"]
    batch = standin_api.store.batch(batch_id)
    assert batch["total"] == 0
    assert batch["processingStart"] == batch["processingEnd"] == batch["uploadComplete"]


def test_a_bad_archive_takes_the_catch_and_is_recorded_and_kept(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path,
        standin_api: StandinApi) -> None:
    batch_id = create_batch(api_client)
    result = upload(stage, tmp_path, batch_id, b"this is not a zip archive at all")

    assert result["status"] == "FAILED"
    assert result["error"] == "BadArchive"
    assert states_entered(stage, result["executionArn"]) == [
        "InspectArchive", "RecordBatchError", "BatchFailed"]
    errors = standin_api.store.batch(batch_id)["errors"]
    # Recorded once by the Catch path; the status-change handler does not repeat it.
    assert len(errors) == 1 and errors[0]["error"].startswith("Bad archive:")
    assert ingestion_objects(stage) == [f"{batch_id}.zip"]  # kept for inspection


def test_a_transient_failure_retries_then_fails_at_its_state_with_a_batch_error(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    batch_id = create_batch(api_client, serial="CAM-9")
    standin_api.faults.append(Fault("updateBatch", 503))

    result = upload(stage, tmp_path, batch_id, zip_bytes({"a.jpg": jpeg_bytes(tmp_path)}))

    assert result["status"] == "FAILED"
    history = stage.history(result["executionArn"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in history
               if e["type"].endswith("StateEntered")]
    assert entered == ["InspectArchive", "MarkUploadComplete"]  # failed there, no Fail state
    attempts = [e for e in history if e["type"] == "TaskFailed"]
    retry_max = stage.tuning["RetryMaxAttempts"]
    assert len(attempts) == 1 + retry_max
    assert all(e["taskFailedEventDetails"]["error"] == "AnimlApiUnavailable" for e in attempts)
    errors = standin_api.store.batch(batch_id)["errors"]
    assert len(errors) == 1
    assert "AnimlApiUnavailable" in errors[0]["error"]
    assert API_KEY not in errors[0]["error"]


def test_a_single_image_upload_is_ingested_by_the_entry_lambda(
        stage: EmbeddedStage, standin_api: StandinApi, tmp_path: Path) -> None:
    s3 = stage.client("s3")
    s3.put_object(Bucket=stage.settings.ingestion_bucket, Key="cam7/IMG_0001.JPG",
                  Body=jpeg_bytes(tmp_path, serial="WIRELESS-7"))
    s3.put_object(Bucket=stage.settings.ingestion_bucket, Key="cam7/readme.txt", Body=b"hi")

    images = standin_api.store.images(None)
    assert [(i["batchId"], i["path"], i["cameraId"]) for i in images] == [
        (None, None, "WIRELESS-7")]
    assert ingestion_objects(stage) == ["cam7/readme.txt"]  # the image's source is released
    executions = stage.client("stepfunctions").list_executions(
        stateMachineArn=stage.state_machine_arn)["executions"]
    assert executions == []


def test_a_batch_of_every_malformed_file_accounts_for_each_one(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path) -> None:
    from animl_local.report import batch_images
    from tests.conftest import MALFORMED

    batch_id = create_batch(api_client, serial="CAM-9")
    members = {f"bad/{p.name}": p.read_bytes() for p in sorted(MALFORMED.iterdir())}
    result = upload(stage, tmp_path, batch_id, zip_bytes(members))

    assert result["status"] == "SUCCEEDED"
    rows, complete = batch_images(stage.client("s3"), stage.settings, batch_id)
    assert complete and len(rows) == len(members) >= 150
    assert sorted(r["path"] for r in rows) == sorted(members)
    for row in rows:
        assert row["outcome"] in ("ingested", "dead-letter")
        assert (row["reason"] is None) == (row["outcome"] == "ingested")
        assert row["keys"]  # stored somewhere: serving or dead-letter


def test_a_child_that_fails_for_good_fails_the_map_run_as_on_aws(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    # AWS fails a Distributed Map run when a child execution fails (no failure is tolerated by
    # default); moto let the Map succeed until animl_local.moto_stepfunctions taught it. The
    # Map state is then the failed state, so a re-drive runs the groups again.
    batch_id = create_batch(api_client, serial="CAM-9")
    standin_api.faults.append(Fault("createImage", 503, body_contains="poison.jpg"))
    members = {f"ok_{i}.jpg": jpeg_bytes(tmp_path, seed=i) for i in range(30)}
    members["poison.jpg"] = jpeg_bytes(tmp_path, seed=99)

    result = upload(stage, tmp_path, batch_id, zip_bytes(members))

    assert result["status"] == "FAILED"
    assert states_entered(stage, result["executionArn"])[-1] == "IngestImages"
    assert result["error"] == "States.ExceedToleratedFailureThreshold"
    [error] = standin_api.store.batch(batch_id)["errors"]
    # The batch error says what the failed Map run left undone (the poisoned group).
    assert error["error"] == ("Ingest failed: 31 image(s) in 1 group(s) have no outcome "
                              "(groups [0]) (States.ExceedToleratedFailureThreshold)")
    assert ingestion_objects(stage) == [f"{batch_id}.zip"]  # nothing is deleted


def test_bombs_odd_names_and_duplicates_are_each_accounted_for(
        stage: EmbeddedStage, api_client: AnimlApiClient, tmp_path: Path) -> None:
    import io
    import warnings
    import zipfile

    from animl_local.report import batch_images

    batch_id = create_batch(api_client, serial="CAM-9")
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")
        zf.writestr("bomb.jpg", b"\0" * 20_000_000)
        zf.writestr("../../escape.jpg", jpeg_bytes(tmp_path, seed=1))
        zf.writestr("C:\\cards\\win.jpg", jpeg_bytes(tmp_path, seed=2))
        zf.writestr("same/IMG.JPG", jpeg_bytes(tmp_path, seed=3))
        zf.writestr("same/IMG.JPG", jpeg_bytes(tmp_path, seed=4))
    result = upload(stage, tmp_path, batch_id, buffer.getvalue())

    assert result["status"] == "SUCCEEDED"
    rows, _ = batch_images(stage.client("s3"), stage.settings, batch_id)
    by_path = sorted((r["path"], r["outcome"], r["reason"]) for r in rows)
    assert by_path == [
        ("bomb.jpg", "dead-letter", "COMPRESSION_RATIO_TOO_HIGH"),
        ("cards/win.jpg", "ingested", None),
        ("escape.jpg", "ingested", None),
        ("same/IMG.JPG", "ingested", None),
        ("same/IMG.JPG", "ingested", None),
    ]
    bomb = next(r for r in rows if r["path"] == "bomb.jpg")
    kept = stage.client("s3").get_object(Bucket=stage.settings.dead_letter_bucket,
                                         Key=bomb["keys"][0])["Body"].read()
    assert 0 < len(kept) < 100_000  # the stored (compressed) bytes, never inflated


def test_a_request_the_api_refuses_as_invalid_fails_at_once_without_retries(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    batch_id = create_batch(api_client, serial="CAM-9")
    standin_api.faults.append(Fault("updateBatch", 400, body_contains="uploadComplete"))

    result = upload(stage, tmp_path, batch_id, zip_bytes({"a.jpg": jpeg_bytes(tmp_path)}))

    assert result["status"] == "FAILED"
    attempts = [e for e in stage.history(result["executionArn"]) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in attempts] == ["AnimlApiRefused"]
    [error] = standin_api.store.batch(batch_id)["errors"]
    assert "HTTP 400 for UpdateBatch" in error["error"]


def test_a_second_run_of_a_finished_batch_changes_nothing(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    batch_id = create_batch(api_client, serial="CAM-9")
    good = jpeg_bytes(tmp_path, seed=1)
    archive = zip_bytes({"a/IMG_1.JPG": good, "b/IMG_1.JPG": good, "empty.jpg": b"",
                         "clip.mp4": b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64,
                         "notes.txt": b"field notes"})
    first = upload(stage, tmp_path, batch_id, archive)
    assert first["status"] == "SUCCEEDED"

    def api_state() -> tuple:
        batch = standin_api.store.batch(batch_id)
        return (batch, standin_api.store.images(batch_id),
                [(e["image"], e["path"], e["error"]) for e in standin_api.store.image_errors(
                    batch_id)])

    before = api_state()
    batch, images, image_errors = before
    assert batch["total"] == 3 and len(images) + batch["imageErrors"] == batch["total"]
    assert len(batch["errors"]) == 1  # the two files that are not images, said once

    # The same batch once more, as an operator's new execution of it would run it.
    stage.client("s3").put_object(Bucket=stage.settings.ingestion_bucket,
                                  Key=f"{batch_id}.zip", Body=archive)
    name = f"{batch_id}-redrive-1"
    stage.client("stepfunctions").start_execution(
        stateMachineArn=stage.state_machine_arn, name=name, input=json.dumps(
            {"batchId": batch_id, "archive": {"Bucket": stage.settings.ingestion_bucket,
                                              "Key": f"{batch_id}.zip"}}))
    second = stage.wait_for_execution(batch_id, execution_name=name, poll_seconds=0.05,
                                      timeout_seconds=120)

    assert second["status"] == "SUCCEEDED"
    assert api_state() == before


def test_a_new_upload_during_ingestion_is_ingested_by_its_own_execution(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient,
        tmp_path: Path) -> None:
    batch_id = create_batch(api_client, serial="CAM-9")
    first = {f"first_{i}.jpg": jpeg_bytes(tmp_path, seed=i) for i in range(3)}
    second = {f"second_{i}.jpg": jpeg_bytes(tmp_path, seed=10 + i) for i in range(3)}
    # The first execution is still at work when ...: its groups' createImage calls are answered
    # 2 s late. (Waiting for its first image instead left a race: the other images are saved
    # within milliseconds of it, and nothing after them calls the API before DeleteArchive.)
    standin_api.latency_seconds = 2.0
    archive = tmp_path / f"{batch_id}.zip"
    archive.write_bytes(zip_bytes(first))
    stage.upload_archive(batch_id, str(archive))
    eventually(lambda: any(event["type"] == "MapRunStarted"
                           for event in stage.history(stage.execution_arn(batch_id))),
               seconds=60, what="the first execution's Map run")
    archive.write_bytes(zip_bytes(second))
    stage.upload_archive(batch_id, str(archive))  # ... the same key holds another upload
    etag = stage.client("s3").head_object(Bucket=stage.settings.ingestion_bucket,
                                          Key=f"{batch_id}.zip")["ETag"]
    standin_api.latency_seconds = 0.0

    before, after = [stage.wait_for_execution(batch_id, execution_name=name, poll_seconds=0.05,
                                              timeout_seconds=120)
                     for name in (batch_id, upload_execution_name(batch_id, etag))]

    # The second upload, in full, by its own execution, which deleted its own archive.
    paths = [i["path"] for i in standin_api.store.images(batch_id)]
    assert after["status"] == "SUCCEEDED" and set(second) <= set(paths)
    assert ingestion_objects(stage) == []
    # The first read only its own upload: done (the second's archive left alone) or failed
    # for a stated reason (a read or its summary met the new upload). Images of either upload,
    # whole, once each.
    if before["status"] == "SUCCEEDED":
        assert "archiveKept" in json.loads(before["output"]) and set(first) <= set(paths)
    else:
        # Its groups met the new upload (the Map run fails, as on AWS, when a child fails)
        # or Summarize found the newer manifest.
        assert before["error"] in ("States.ExceedToleratedFailureThreshold", "ArchiveChanged")
        errors = [e["error"] for e in standin_api.store.batch(batch_id)["errors"]]
        assert any("The archive changed during ingestion" in e for e in errors)
    assert sorted(paths) == sorted(set(paths)) and set(paths) <= {*first, *second}
