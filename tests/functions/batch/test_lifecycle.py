"""A failed execution's batch error: a failed Map run says what its groups left undone."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from animl_local.standin_api import StandinApi
from functions.batch import batch_record, batch_steps, lifecycle
from functions.batch.execution_events import MAP_RUN_FAILED
from functions.image.ingest_image import Services
from functions.platform import storage
from tests.conftest import create_batch, jpeg_bytes, zip_bytes


def map_run_failed(services: Services, batch_id: str) -> dict:
    """EventBridge's status change for an execution whose Map run failed (a child failed)."""
    machine = services.settings.state_machine_arn("123456789012")
    return {"detail": {"stateMachineArn": machine, "name": batch_id, "status": "FAILED",
                       "input": json.dumps({"batchId": batch_id}), "error": MAP_RUN_FAILED,
                       "cause": "The specified tolerated failure threshold was exceeded"}}


def test_a_failed_map_run_says_how_many_images_in_how_many_groups_have_no_outcome(
        services: Services, standin_api: StandinApi, tmp_path: Path) -> None:
    services = replace(services, settings=replace(services.settings, group_max_entries=3))
    batch_id = create_batch(services.api, serial="CAM-1")
    members = {f"IMG_{i}.JPG": jpeg_bytes(tmp_path, seed=i) for i in range(8)}  # 3 + 3 + 2
    bucket, key = services.settings.ingestion_bucket, f"{batch_id}.zip"
    services.s3.put_object(Bucket=bucket, Key=key, Body=zip_bytes(members))
    batch_steps.inspect_batch_archive(services.s3, services.settings, batch_id, bucket, key)
    items = storage.get_json(services.s3, services.settings.batch_work_bucket,
                             storage.manifest_key(batch_id))
    assert [len(item["entries"]) for item in items] == [3, 3, 2]
    first = items[0]  # only the first group finished before the Map run failed
    batch_steps.ingest_group(services, batch_id, bucket, key, first["group"], first["entries"])

    assert lifecycle.record_bad_end(services.api, services.s3, services.settings,
                                    map_run_failed(services, batch_id)) == batch_id

    expected = (f"Ingest failed: 5 image(s) in 2 group(s) have no outcome (groups [1, 2]) "
                f"({MAP_RUN_FAILED})")
    [error] = standin_api.store.batch(batch_id)["errors"]
    assert error["error"] == expected
    record = batch_record.read_batch_record(services.s3, services.settings, batch_id)
    assert record["executionFailures"] == [expected]

    # The re-drive works the other groups and completes the batch: its report says the
    # failure was resolved.
    for item in items[1:]:
        batch_steps.ingest_group(services, batch_id, bucket, key, item["group"], item["entries"])
    batch_steps.summarize_batch(services.s3, services.api, services.settings, batch_id)
    at = "2024-06-01T13:00:00Z"
    batch_steps.mark_batch_status(services.api, services.s3, services.settings, batch_id,
                                  "processingEnd", at)
    report = storage.get_json(services.s3, services.settings.batch_work_bucket,
                              storage.report_key(batch_id))
    assert report["resolvedErrors"] == [{"error": expected, "resolvedAt": at}]
    assert report["counts"] == {"ingested": 8}


def test_without_a_manifest_the_map_run_error_is_recorded_as_it_came(
        services: Services, standin_api: StandinApi) -> None:
    batch_id = create_batch(services.api, serial="CAM-1")

    lifecycle.record_bad_end(services.api, services.s3, services.settings,
                             map_run_failed(services, batch_id))

    [error] = standin_api.store.batch(batch_id)["errors"]
    assert error["error"] == (f"Ingest failed: {MAP_RUN_FAILED}: The specified tolerated "
                              "failure threshold was exceeded")
