"""The ASL file: valid JSON, readable state names, every placeholder filled."""

from __future__ import annotations

import json

import pytest

from animl_local.state_machine import (
    DEFAULT_TUNING,
    fill,
    function_placeholder,
    load_definition,
    placeholders,
    render_definition,
)
from chalice_app.application import app


def all_states(definition: dict) -> dict:
    states = dict(definition["States"])
    for state in definition["States"].values():
        if "ItemProcessor" in state:
            states.update(all_states(state["ItemProcessor"]))
    return states


def test_every_placeholder_is_a_chalice_function_or_a_tuning_value() -> None:
    functions = {f.name for f in app.pure_lambda_functions} - {"ingest_delete"}  # API-invoked
    expected = {function_placeholder(name) for name in functions} | set(DEFAULT_TUNING)
    assert placeholders(load_definition()) == expected


def test_rendering_leaves_no_placeholder_and_types_numbers() -> None:
    arns = {f.name: f"arn:aws:lambda:us-west-2:1:function:{f.name}"
            for f in app.pure_lambda_functions}
    rendered = json.loads(render_definition(arns, {"RetryMaxAttempts": 3}))
    assert "${" not in json.dumps(rendered)
    retry = rendered["States"]["InspectArchive"]["Retry"][0]
    assert retry["MaxAttempts"] == 3 and isinstance(retry["IntervalSeconds"], int)


def test_a_missing_value_is_named() -> None:
    with pytest.raises(KeyError, match="Nope"):
        fill({"a": "${Nope}"}, {})


def test_transitions_point_at_existing_states_and_only_bad_archives_are_caught() -> None:
    definition = load_definition()
    states = all_states(definition)
    for name, state in states.items():
        for target in [state.get("Next"), *[c["Next"] for c in state.get("Catch", [])],
                       *[c["Next"] for c in state.get("Choices", [])], state.get("Default")]:
            assert target is None or target in states, f"{name} -> {target}"
        for catch in state.get("Catch", []):
            # A catch-all would turn a redrive into a re-run of the Fail state only.
            assert catch["ErrorEquals"] == ["BadArchive"], name
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
