"""Ingest's own record of a batch: a failure a later execution recovers from is marked resolved."""

from __future__ import annotations

import json

from functions.batch import batch_record, batch_steps, lifecycle
from functions.image.ingest_image import Services
from tests.conftest import create_batch


def failed_event(services: Services, batch_id: str) -> dict:
    """EventBridge's status change for the batch's first execution, which failed."""
    machine = services.settings.state_machine_arn("123456789012")
    cause = {"errorType": "IncompleteBatch", "errorMessage": "3 image(s) in 1 group(s) have no "
                                                             "outcome (groups [0])"}
    return {"detail": {"stateMachineArn": machine, "name": batch_id, "status": "FAILED",
                       "input": json.dumps({"batchId": batch_id}), "error": "IncompleteBatch",
                       "cause": json.dumps(cause)}}


def test_a_redrive_that_completes_the_batch_resolves_the_earlier_failure(
        services: Services, standin_api) -> None:
    api, s3, settings = services.api, services.s3, services.settings
    batch_id = create_batch(api, serial="CAM-1")
    assert lifecycle.record_bad_end(api, s3, settings, failed_event(services, batch_id))
    not_images = "1 file(s) in the archive are not images"
    batch_record.record_batch_error(api, s3, settings, batch_id, not_images)
    [failure] = batch_record.read_batch_record(s3, settings, batch_id)["executionFailures"]
    assert failure.startswith("Ingest failed: IncompleteBatch")

    # The re-drive's execution reaches MarkProcessingEnd: the batch is complete.
    record = batch_steps.mark_batch_status(api, s3, settings, batch_id, "processingEnd",
                                           "2024-06-01T13:00:00Z")

    assert record["resolvedErrors"] == [{"error": failure, "resolvedAt": "2024-06-01T13:00:00Z"}]
    assert record["errors"] == [failure, not_images]  # the API's errors stay as they were
    again = batch_steps.mark_batch_status(api, s3, settings, batch_id, "processingEnd",
                                          "2024-06-01T14:00:00Z")  # a repeated step: converges
    assert again["resolvedErrors"] == record["resolvedErrors"]
    assert len(standin_api.store.batch(batch_id)["errors"]) == 2
