"""Each function's IAM policy: generated from the stage's names, current, and narrow."""

from __future__ import annotations

import json

import pytest

from animl_local.policies import CHALICE_DIR, STAGES, policy_documents, policy_file_name, render
from chalice_app.application import app


@pytest.mark.parametrize("stage", STAGES)
def test_every_function_has_its_own_current_policy_file(stage: str) -> None:
    config = json.loads((CHALICE_DIR / "config.json").read_text())
    assert config["autogen_policy"] is False
    functions = config["stages"][stage]["lambda_functions"]
    names = {f.name for f in app.pure_lambda_functions} | {e.name for e in app.event_sources}
    documents = policy_documents(stage)
    assert set(documents) == names
    for name in names:
        file_name = functions[name]["iam_policy_file"]
        assert file_name == policy_file_name(stage, name)
        # Regenerate with `python -m animl_local.policies` when this fails.
        assert (CHALICE_DIR / file_name).read_text() == render(documents[name])


@pytest.mark.parametrize("stage", STAGES)
def test_policies_name_only_the_stage_resources(stage: str) -> None:
    other = "prod" if stage == "dev" else "dev"
    for name, document in policy_documents(stage).items():
        text = json.dumps(document)
        assert f"-{other}" not in text, name
        for statement in document["Statement"]:
            if statement["Resource"] == "*":
                # Only actions AWS cannot scope to a resource.
                actions = statement["Action"] if isinstance(statement["Action"], list) else [
                    statement["Action"]]
                assert set(actions) <= {"sqs:ListQueues",
                                        "lambda:CreateEventSourceMapping",
                                        "lambda:DeleteEventSourceMapping",
                                        "lambda:GetEventSourceMapping",
                                        "lambda:ListEventSourceMappings"}, name


def test_image_workers_cannot_touch_the_parking_lot_or_queues() -> None:
    worker = json.dumps(policy_documents("dev")["ingest_image_group"])
    assert "parkinglot" not in worker and "sqs:" not in worker and "states:" not in worker
