"""Which execution status changes become batch errors, and with what text."""

from __future__ import annotations

import json

from functions.batch.execution_events import batch_error_for

BATCH = "batch-1b4e28ba-2fa1-11d2-883f-0016d3cca427"


def event(status: str, error: str | None = None, cause: str | None = None) -> dict:
    return {"detail-type": "Step Functions Execution Status Change", "detail": {
        "status": status, "name": BATCH, "error": error, "cause": cause,
        "input": json.dumps({"batchId": BATCH, "archive": {}})}}


def test_a_failed_execution_becomes_a_batch_error_with_the_lambda_message() -> None:
    cause = json.dumps({"errorType": "AnimlApiUnavailable", "errorMessage": "Animl API HTTP 503"})
    assert batch_error_for(event("FAILED", "AnimlApiUnavailable", cause)) == (
        BATCH, "Ingest failed: AnimlApiUnavailable: Animl API HTTP 503")


def test_timed_out_and_aborted_are_recorded_too() -> None:
    assert batch_error_for(event("TIMED_OUT"))[1] == "Ingest timed out: TIMED_OUT"
    assert batch_error_for(event("ABORTED"))[1] == "Ingest aborted: ABORTED"


def test_bad_archives_and_successes_are_not_recorded_again() -> None:
    assert batch_error_for(event("FAILED", "BadArchive", "see the batch errors")) is None
    assert batch_error_for(event("SUCCEEDED")) is None
    assert batch_error_for(event("RUNNING")) is None
