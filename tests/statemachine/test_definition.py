"""The ASL file: valid JSON, readable state names, every placeholder filled."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil

import botocore.exceptions
import pytest

import functions
from animl_local.state_machine import (
    API_CALLS_IN_FLIGHT,
    DEFAULT_TUNING,
    LAMBDA_SERVICE_ERRORS,
    fill,
    function_placeholder,
    load_definition,
    placeholders,
    render_definition,
    retry_policies,
)
from chalice_app.application import app
from functions.platform.settings import Settings


def all_states(definition: dict) -> dict:
    states = dict(definition["States"])
    for state in definition["States"].values():
        if "ItemProcessor" in state:
            states.update(all_states(state["ItemProcessor"]))
    return states


def test_every_placeholder_is_a_chalice_function_or_a_tuning_value() -> None:
    functions = {f.name for f in app.pure_lambda_functions} - {"ingest_delete"}  # API-invoked
    # The retry timings reach the ASL through the retry policies.
    tuning = set(DEFAULT_TUNING) - {"RetryIntervalSeconds", "RetryMaxAttempts"}
    expected = ({function_placeholder(name) for name in functions} | tuning
                | set(retry_policies(DEFAULT_TUNING)))
    assert placeholders(load_definition()) == expected


def test_rendering_leaves_no_placeholder_and_types_numbers() -> None:
    arns = {f.name: f"arn:aws:lambda:us-west-2:1:function:{f.name}"
            for f in app.pure_lambda_functions}
    rendered = json.loads(render_definition(arns, {"RetryMaxAttempts": 3}))
    assert "${" not in json.dumps(rendered)
    retry = rendered["States"]["InspectArchive"]["Retry"][0]
    assert retry["MaxAttempts"] == 3 and isinstance(retry["IntervalSeconds"], int)


def test_a_batch_has_no_more_create_image_calls_in_flight_than_the_api_has_taken() -> None:
    # Groups in flight (the Map's MaxConcurrency) times the entries each works at once.
    arns = {f.name: f"arn:aws:lambda:us-west-2:1:function:{f.name}"
            for f in app.pure_lambda_functions}
    rendered = json.loads(render_definition(arns))
    [map_state] = [s for s in all_states(rendered).values() if s["Type"] == "Map"]
    in_flight = map_state["MaxConcurrency"] * Settings(stage="prod").group_concurrency
    assert API_CALLS_IN_FLIGHT // 2 < in_flight <= API_CALLS_IN_FLIGHT == 1600


def test_a_missing_value_is_named() -> None:
    with pytest.raises(KeyError, match="Nope"):
        fill({"a": "${Nope}"}, {})


ARCHIVE_DELETES = ("DeleteArchive", "DeleteEmptyArchive")


def test_transitions_point_at_existing_states_and_only_bad_archives_are_caught() -> None:
    definition = load_definition()
    states = all_states(definition)
    for name, state in states.items():
        for target in [state.get("Next"), *[c["Next"] for c in state.get("Catch", [])],
                       *[c["Next"] for c in state.get("Choices", [])], state.get("Default")]:
            assert target is None or target in states, f"{name} -> {target}"
        for catch in state.get("Catch", []):
            # A catch-all would turn a redrive into a re-run of the Fail state only. The archive
            # deletes (If-Match) go on, keeping the object, when the key holds another upload
            # (any failure: they lead to no Fail state, and a kept archive loses nothing).
            expected = ["States.ALL"] if name in ARCHIVE_DELETES else ["BadArchive"]
            assert catch["ErrorEquals"] == expected, name
            assert name not in ARCHIVE_DELETES or states[catch["Next"]]["Type"] != "Fail"
    for name in ARCHIVE_DELETES:
        assert states[name]["Parameters"]["IfMatch.$"] == "$.inspection.value.archive.ETag"
    assert definition["States"]["IngestImages"]["ItemProcessor"]["ProcessorConfig"] == {
        "Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def test_the_rendered_definition_parses_as_amazon_states_language() -> None:
    # moto's interpreter carries LocalStack's ANTLR grammar of ASL: a syntax check for every
    # field (types, enums, JSONPaths); transitions are checked above.
    from moto.stepfunctions.parser.asl.parse.asl_parser import (
        AmazonStateLanguageParser,
        ASLParserException,
    )

    arns = {f.name: f"arn:aws:lambda:us-west-2:1:function:{f.name}"
            for f in app.pure_lambda_functions}
    AmazonStateLanguageParser.parse(render_definition(arns))
    broken = json.loads(render_definition(arns))
    broken["States"]["AwaitInference"]["Seconds"] = "soon"
    with pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse(json.dumps(broken))


def test_each_retry_policy_is_written_once_and_every_task_uses_one() -> None:
    for name, state in all_states(load_definition()).items():
        if state["Type"] == "Task":
            assert state.get("Retry") in ("${TransientRetry}", "${AnyErrorRetry}"), name


def exception_names_the_code_can_raise() -> set[str]:
    """Exception classes of the shipped code and of botocore (raised through its clients)."""
    names = {n for n, c in inspect.getmembers(botocore.exceptions, inspect.isclass)
             if issubclass(c, BaseException)}
    for module in pkgutil.walk_packages(functions.__path__, "functions."):
        loaded = importlib.import_module(module.name)
        names |= {n for n, c in inspect.getmembers(loaded, inspect.isclass)
                  if issubclass(c, BaseException) and c.__module__ == loaded.__name__}
    return names


def test_every_error_name_in_the_asl_is_one_that_can_happen() -> None:
    """A renamed exception must not leave a Retry or Catch matching nothing."""
    arns = {f.name: f"arn:aws:lambda:us-west-2:1:function:{f.name}"
            for f in app.pure_lambda_functions}
    rendered = json.loads(render_definition(arns))
    known = exception_names_the_code_can_raise() | set(LAMBDA_SERVICE_ERRORS) | {"States.ALL"}
    for name, state in all_states(rendered).items():
        for rule in state.get("Retry", []) + state.get("Catch", []):
            assert set(rule["ErrorEquals"]) <= known, (name, set(rule["ErrorEquals"]) - known)
    assert {"BadArchive", "AnimlApiUnavailable"} <= known


def test_every_s3_call_of_the_state_machine_expects_the_stage_account_as_bucket_owner() -> None:
    # Bucket names are predictable: a call to a bucket someone else created must fail, not
    # succeed against theirs. The account is the fifth field of the state machine's ARN.
    s3_tasks = {name: state for name, state in all_states(load_definition()).items()
                if state.get("Resource", "").startswith("arn:aws:states:::aws-sdk:s3:")}

    assert s3_tasks  # DeleteArchive, DeleteEmptyArchive
    for name, state in s3_tasks.items():
        assert state["Parameters"].get("ExpectedBucketOwner.$") == (
            "States.ArrayGetItem(States.StringSplit($$.StateMachine.Id, ':'), 4)"), name
