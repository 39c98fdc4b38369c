"""moto's Step Functions as IngestBatch needs it: RedriveExecution and failing Map runs, checked
against botocore's model of the real service."""

from __future__ import annotations

import json

import botocore.session
import pytest

from animl_local import moto_stepfunctions


def sfn_model():  # type: ignore[no-untyped-def]
    return botocore.session.get_session().get_service_model("stepfunctions")


def test_the_redrive_answers_use_the_real_services_names_and_values() -> None:
    model = sfn_model()
    redrive = model.operation_model("RedriveExecution")
    assert set(redrive.input_shape.members) >= {"executionArn"}
    assert set(redrive.output_shape.members) == {"redriveDate"}
    described = model.operation_model("DescribeExecution").output_shape.members
    answered = {"redriveCount", "redriveDate", "redriveStatus", "redriveStatusReason"}
    assert answered <= set(described)
    assert {"REDRIVABLE", "NOT_REDRIVABLE"} <= set(described["redriveStatus"].enum)
    assert moto_stepfunctions.ExecutionNotRedrivable.TYPE in {
        shape.name for shape in redrive.error_shapes}


@pytest.mark.parametrize("failed, total, count, percentage, fails", [
    (0, 10, 0, 0.0, False),
    (1, 10, 0, 0.0, True),  # AWS's default: no failure tolerated
    (1, 10, 1, 100.0, False),
    (2, 10, 1, 100.0, True),
    (1, 10, 5, 10.0, False),
    (2, 10, 5, 10.0, True),
])
def test_a_map_run_fails_past_either_tolerance(failed: int, total: int, count: int,
                                               percentage: float, fails: bool) -> None:
    assert moto_stepfunctions.exceeds_tolerance(failed, total, count, percentage) is fails


def entered(name: str, data: dict) -> dict:
    return {"stateEnteredEventDetails": {"name": name, "input": json.dumps(data)}}


def exited(name: str) -> dict:
    return {"stateExitedEventDetails": {"name": name}}


def test_the_resume_point_is_the_top_level_state_that_did_not_exit() -> None:
    history = [entered("A", {"a": 1}), exited("A"), entered("Map", {"m": 2}),
               entered("Child", {"c": 3}), exited("Child"), entered("Child", {"c": 4})]
    assert moto_stepfunctions.resume_point(history, {"A", "Map", "B"}) == ("Map", {"m": 2})


def test_an_execution_whose_states_all_exited_cannot_be_resumed() -> None:
    with pytest.raises(moto_stepfunctions.ExecutionNotRedrivable):
        moto_stepfunctions.resume_point([entered("A", {}), exited("A")], {"A"})
