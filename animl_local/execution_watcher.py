"""The one execution watcher: waits for a batch's execution to end (`run`, the tests) or watches
every execution of the stage (`serve`), and plays EventBridge's part.

On AWS an EventBridge rule sends "Step Functions Execution Status Change" to the status-change
Lambda when an execution ends FAILED, TIMED_OUT or ABORTED; moto has no such rule, so the watcher
sends the same event once per ending (a re-driven execution that fails again is a new ending).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from animl_local import operations
from functions.batch.execution_events import ENDED_BADLY

TERMINAL = ("SUCCEEDED", *ENDED_BADLY)


@dataclass
class ExecutionWatcher:
    sfn: Any  # a Step Functions client
    state_machine_arn: str
    # Delivers a status-change event (see status_change_event) as EventBridge would.
    deliver: Callable[[dict[str, Any]], None]
    region: str
    account: str
    _reported: set[tuple[str, int]] = field(default_factory=set)

    def wait(self, execution_arn: str, on_progress: Callable[[], None] | None = None,
             poll_seconds: float = 0.25, timeout_seconds: float = 3600) -> dict[str, Any]:
        """Block until the execution ends (stopping it after `timeout_seconds`); report a bad
        end; returns its description."""
        deadline = time.monotonic() + timeout_seconds
        try:
            while True:
                description = self.sfn.describe_execution(executionArn=execution_arn)
                if description["status"] in TERMINAL:
                    break
                if time.monotonic() > deadline:
                    self.sfn.stop_execution(executionArn=execution_arn, error="LocalTimeout",
                                            cause=f"no end after {timeout_seconds} s")
                    continue
                if on_progress:
                    on_progress()
                time.sleep(poll_seconds)
        except BaseException:  # Ctrl-C, SIGTERM: the execution stops before the stage does
            self.sfn.stop_execution(executionArn=execution_arn, error="Interrupted",
                                    cause="the local run was interrupted")
            raise
        if on_progress:
            on_progress()  # the final count
        self.report_if_ended_badly(description)
        return description

    def report_bad_ends(self) -> None:
        """One pass over the stage's executions: report each bad end not reported yet."""
        for status in ENDED_BADLY:
            for row in operations.list_executions(self.sfn, self.state_machine_arn, status):
                if (row["executionArn"], row.get("redriveCount", 0)) not in self._reported:
                    self.report_if_ended_badly(
                        self.sfn.describe_execution(executionArn=row["executionArn"]))

    def watch_forever(self, poll_seconds: float = 1.0,
                      on_event: Callable[[str], None] | None = None) -> None:
        """`serve`: report bad ends until interrupted; `on_event` gets one line per execution
        started, ended (with its status) or re-driven."""
        seen: dict[str, tuple[str, int]] = {}
        while True:
            time.sleep(poll_seconds)
            if on_event:
                for line in self.changes(seen):
                    on_event(line)
            self.report_bad_ends()

    def changes(self, seen: dict[str, tuple[str, int]]) -> list[str]:
        """What happened to the stage's executions since `seen` (arn: status and re-drive
        count, updated here), one line per event, oldest first."""
        lines = []
        for row in reversed(operations.list_executions(self.sfn, self.state_machine_arn)):
            now = (row["status"], row.get("redriveCount", 0))
            before = seen.get(row["executionArn"])
            if before == now:
                continue
            seen[row["executionArn"]] = now
            lines.extend(execution_events(row["name"], before, now))
        return lines

    def report_if_ended_badly(self, description: dict[str, Any]) -> None:
        ending = (description["executionArn"], description.get("redriveCount", 0))
        if description["status"] in ENDED_BADLY and ending not in self._reported:
            self._reported.add(ending)
            self.deliver(status_change_event(description, self.region, self.account))


def execution_events(name: str, before: tuple[str, int] | None, now: tuple[str, int]
                     ) -> list[str]:
    """The lines that say how an execution went from `before` (None: not seen yet) to `now`,
    each a (status, re-drive count)."""
    status, redrives = now
    lines = []
    if before is None:
        lines.append(f"execution {name} started (upload seen)")
    elif redrives > before[1] or (before[0] in TERMINAL and status == "RUNNING"):
        lines.append(f"execution {name} re-driven (re-drive {redrives})")
    if status in TERMINAL:
        lines.append(f"execution {name} ended {status}")
    return lines


def status_change_event(description: dict[str, Any], region: str, account: str
                        ) -> dict[str, Any]:
    """The EventBridge "Step Functions Execution Status Change" event for an execution."""
    def millis(value: Any) -> int | None:
        return int(value.timestamp() * 1000) if hasattr(value, "timestamp") else None

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [description["executionArn"]],
        "detail": {
            "executionArn": description["executionArn"],
            "stateMachineArn": description["stateMachineArn"],
            "name": description["name"],
            "status": description["status"],
            "startDate": millis(description.get("startDate")),
            "stopDate": millis(description.get("stopDate")),
            "input": description.get("input"),
            "output": description.get("output"),
            "error": description.get("error"),
            "cause": description.get("cause"),
        },
    }
