"""What moto's Step Functions interpreter lacks and IngestBatch relies on: RedriveExecution, and
a Distributed Map run that fails when its child executions fail.

Distributed Map: on AWS a Map run fails (`States.ExceedToleratedFailureThreshold`) when more
child executions fail than ToleratedFailureCount / ToleratedFailurePercentage allow (both 0 by
default: any failure); moto counts the failures and lets the Map state succeed. Without this, a
batch with failed groups failed only later, at SummarizeOutcomes, and a re-drive resumed there,
past the groups it had to redo.

RedriveExecution: on AWS it restarts a FAILED, TIMED_OUT or ABORTED execution (same ARN) at the
state that did not succeed, with the input that state received; states that succeeded are not run
again, and the history goes on from where it stopped. `install()` gives moto the same: the
execution's status goes back to RUNNING, `redriveCount` grows, an `ExecutionRedriven` event follows
the old history, and the interpreter starts at the top-level state that was running when the
execution ended (a Map state is run again whole: our groups skip what their stored outcomes say
is done, as a redriven Map run re-runs only unsuccessful iterations on AWS).

Left out (not needed by anything here): AWS's 14-day redrive window and its other
NOT_REDRIVABLE reasons (history event limit, maximum execution time), and the re-run of only the
failed iterations of an Inline Map or Parallel state.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionStatus,
    HistoryEventType,
)
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    distributed_iteration_component as distributed,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

# AWS's answers, as documented for RedriveExecution / DescribeExecution.
REDRIVABLE_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
MAP_RUN_FAILED_CAUSE = "The specified tolerated failure threshold was exceeded"


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def install() -> None:
    """Teach moto's Step Functions RedriveExecution and failure thresholds (idempotent)."""
    if getattr(StepFunctionResponse, "_animl_redrive", False):
        return
    _install_map_run_tolerance()
    StepFunctionsParserBackend.redrive_execution = _backend_redrive  # type: ignore[attr-defined]
    StepFunctionResponse.redrive_execution = _respond_redrive  # type: ignore[attr-defined]
    original_describe = StepFunctionResponse.describe_execution

    def describe_execution(self: Any) -> Any:
        answer = original_describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        fields: Any = answer.result  # the answer's own dict, extended
        fields.update(redrive_fields(execution))
        return answer

    StepFunctionResponse.describe_execution = describe_execution  # type: ignore[method-assign]
    StepFunctionResponse._animl_redrive = True  # type: ignore[attr-defined]


def redrive_fields(execution: Any) -> dict[str, Any]:
    """DescribeExecution's redrive fields for a moto execution."""
    fields: dict[str, Any] = {"redriveCount": getattr(execution, "redrive_count", 0)}
    if getattr(execution, "redrive_date", None):
        fields["redriveDate"] = execution.redrive_date
    if execution.status in REDRIVABLE_STATUSES:
        fields["redriveStatus"] = "REDRIVABLE"
    else:
        fields["redriveStatus"] = "NOT_REDRIVABLE"
        fields["redriveStatusReason"] = f"Execution is {execution.status} and cannot be redriven."
    return fields


def _respond_redrive(self: Any) -> ActionResult:
    execution = self.stepfunction_backend.redrive_execution(self._get_param("executionArn"))
    return ActionResult({"redriveDate": execution.redrive_date})


def _backend_redrive(self: Any, execution_arn: str) -> Any:
    execution = self.describe_execution(execution_arn)
    if execution.status not in REDRIVABLE_STATUSES:
        raise ExecutionNotRedrivable(f"Execution is {execution.status} and cannot be redriven.")
    old_env = execution.exec_worker.env
    definition = json.loads(execution.state_machine.definition)
    state, state_input = resume_point(old_env.event_manager.get_event_history(),
                                      set(definition["States"]))
    execution.redrive_count = getattr(execution, "redrive_count", 0) + 1
    execution.redrive_date = datetime.datetime.now(tz=datetime.UTC)
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = execution.error = execution.cause = None
    worker = execution._get_start_execution_worker()
    worker.__class__ = RedriveWorker  # same state, the redrive's logic
    worker.resume(json.dumps({**definition, "StartAt": state}), state_input, old_env,
                  execution.redrive_count)
    execution.exec_worker = worker
    worker.start()
    return execution


def resume_point(history: list[dict[str, Any]], top_level: set[str]) -> tuple[str, Any]:
    """The top-level state that was running when the execution ended, and its input."""
    entered: dict[str, Any] = {}
    for event in history:
        details = event.get("stateEnteredEventDetails")
        if details and details["name"] in top_level:
            entered = {"name": details["name"], "input": details.get("input")}
        exited = event.get("stateExitedEventDetails")
        if exited and entered and exited["name"] == entered["name"]:
            entered = {}
    if not entered:
        raise ExecutionNotRedrivable("the execution's history shows no state that did not "
                                     "succeed")
    return entered["name"], json.loads(entered["input"] or "{}")


class RedriveWorker(ExecutionWorker):
    """Runs a definition whose StartAt is the failed state, on that state's input, adding to
    the execution's history (one history, numbered on, as on AWS)."""

    def resume(self, definition: str, state_input: Any, old_env: Any, redrive_count: int) -> None:
        last_id = max((e["id"] for e in old_env.event_manager.get_event_history()), default=0)
        env = self._get_evaluation_environment()
        env.event_manager = old_env.event_manager
        env.event_history_context.integrate(EventHistoryContext(last_id))
        env.states.reset(state_input)
        env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details=_event_details("executionRedrivenEventDetails",
                                         {"redriveCount": redrive_count}),
            update_source_event_id=False,
        )
        self.env = env  # set before the thread starts: describe and history read it
        self._definition = definition

    def _execution_logic(self) -> None:
        program = AmazonStateLanguageParser.parse(self._definition)[0]
        assert self.env is not None  # set by resume()
        program.eval(self.env)
        self._execution_communication.terminated()


def _event_details(kind: str, details: dict[str, Any]) -> EventDetails:
    # moto's TypedDict lists every kind as required; each event carries exactly one.
    made: Any = {kind: details}
    return made  # type: ignore[no-any-return]


def exceeds_tolerance(failed: int, total: int, tolerated_count: int,
                      tolerated_percentage: float) -> bool:
    """AWS's rule: the run fails when failures pass the count or the percentage tolerated."""
    if failed == 0:
        return False
    return failed > tolerated_count or 100.0 * failed / max(total, 1) > tolerated_percentage


def _install_map_run_tolerance() -> None:
    component = distributed.DistributedIterationComponent
    original_map_run = component._map_run

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original_map_run(self, env, eval_input)
        record = eval_input.map_run_record
        counter = record.item_counter
        failed = counter.failed.get() + counter.timed_out.get()
        if exceeds_tolerance(failed, len(env.stack[-1]), record.tolerated_failure_count or 0,
                             record.tolerated_failure_percentage or 0.0):
            env.stack.pop()  # the outputs: the state fails instead
            error = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
            raise FailureEventException(FailureEvent(
                env=env, error_name=error, event_type=HistoryEventType.ExecutionFailed,
                event_details=_event_details("executionFailedEventDetails", {
                    "error": error.error_name, "cause": MAP_RUN_FAILED_CAUSE})))

    component._map_run = map_run  # type: ignore[method-assign]
