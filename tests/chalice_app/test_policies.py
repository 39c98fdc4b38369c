"""Each function's IAM policy: generated from the stage's names, current, and narrow."""

from __future__ import annotations

import json

import pytest

from animl_local.aws_calls import allowed
from animl_local.policies import (
    CHALICE_DIR,
    STAGES,
    UNSCOPED_ACTIONS,
    policy_documents,
    policy_file_name,
    render,
)
from chalice_app.application import app
from functions.platform.settings import Settings

ACCOUNT = "123456789012"


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



def _as_list(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("stage", STAGES)
def test_every_star_resource_is_one_aws_leaves_no_choice_for(stage: str) -> None:
    """`"Resource": "*"` only for the actions of UNSCOPED_ACTIONS, each with its reason; an
    action whose reason names a condition has it."""
    assert all(unscoped.reason.strip() for unscoped in UNSCOPED_ACTIONS.values())
    for name, document in policy_documents(stage).items():
        for statement in document["Statement"]:
            resources = _as_list(statement["Resource"])
            if "*" not in resources:
                continue
            for action in _as_list(statement["Action"]):
                assert action in UNSCOPED_ACTIONS, f"{name}: unjustified * for {action}"
                key = UNSCOPED_ACTIONS[action].condition_key
                if key is not None:
                    conditions = statement.get("Condition", {}).values()
                    assert any(key in keys for keys in conditions), f"{name}: {action} lacks {key}"


@pytest.mark.parametrize("stage", STAGES)
def test_each_function_writes_only_its_own_log_group(stage: str) -> None:
    settings = Settings(stage=stage)
    documents = policy_documents(stage)
    for name, document in documents.items():
        neighbour = next(other for other in documents if other != name)
        own = f"/aws/lambda/{settings.function_name(name)}"
        other = f"/aws/lambda/{settings.function_name(neighbour)}"
        for group, expected in ((own, True), (other, False)):
            stream = f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:{group}:log-stream:2026/x"
            assert allowed(document, "logs:PutLogEvents", stream) is expected, (name, group)
            assert allowed(document, "logs:CreateLogGroup",
                           f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:{group}") is expected
    # IngestDelete-<stage> runs under ingest_delete's role (animl_local.deploy publishes it).
    copy = f"/aws/lambda/{settings.ingest_delete_function_name}"
    assert allowed(documents["ingest_delete"], "logs:PutLogEvents",
                   f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:{copy}:log-stream:s")
    assert not allowed(documents["on_upload"], "logs:PutLogEvents",
                       f"arn:aws:logs:us-west-2:{ACCOUNT}:log-group:{copy}:log-stream:s")


@pytest.mark.parametrize("stage", STAGES)
def test_event_source_mappings_reach_only_the_stage_batch_inference_function(
        stage: str) -> None:
    settings = Settings(stage=stage)
    other = "prod" if stage == "dev" else "dev"
    ours = f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{settings.inference_function_name}"
    theirs = [ours.replace(f"-{stage}-", f"-{other}-"),
              f"arn:aws:lambda:us-west-2:{ACCOUNT}:function:{settings.function_name('on_upload')}"]
    mapping = f"arn:aws:lambda:us-west-2:{ACCOUNT}:event-source-mapping:0b1c2d3e"
    documents = policy_documents(stage)
    for name, action, resource in (("provision_inference", "CreateEventSourceMapping", "*"),
                                   ("teardown_inference", "DeleteEventSourceMapping", mapping),
                                   ("ingest_delete", "DeleteEventSourceMapping", mapping),
                                   ("sweep_inference_resources", "DeleteEventSourceMapping",
                                    mapping)):
        document = documents[name]
        assert allowed(document, f"lambda:{action}", resource, {"lambda:FunctionArn": ours})
        for arn in theirs:
            assert not allowed(document, f"lambda:{action}", resource,
                               {"lambda:FunctionArn": arn}), (name, arn)
        assert not allowed(document, f"lambda:{action}", resource), name  # no key, no grant
    # Creating is provisioning's alone; nobody gets or updates mappings.
    for name, document in documents.items():
        text = json.dumps(document)
        assert ("CreateEventSourceMapping" in text) is (name == "provision_inference"), name
        assert "GetEventSourceMapping" not in text and "UpdateEventSourceMapping" not in text


def test_image_workers_cannot_touch_the_parking_lot_or_queues() -> None:
    worker = json.dumps(policy_documents("dev")["ingest_image_group"])
    assert "parkinglot" not in worker and "sqs:" not in worker and "states:" not in worker
