"""The Chalice app's wiring: one S3 entry handler, one Lambda per state-machine task."""

from __future__ import annotations

import os
import subprocess
import sys

from animl_local.state_machine import function_placeholder, load_definition, placeholders
from chalice_app.application import app


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
