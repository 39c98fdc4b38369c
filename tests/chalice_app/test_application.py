"""The handlers as Lambda runs them: each invocation tells the runtime its account, whose buckets
its S3 calls then expect (functions.platform.bucket_owner)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from chalice_app import handlers
from functions.platform import bucket_owner
from functions.platform.runtime import reset_runtime
from functions.platform.settings import Settings
from tests.conftest import REGION


@dataclass
class Context:
    invoked_function_arn: str
    function_name: str = "animl-ingest-test-check_inference"


def context_in(account: str, function: str) -> Context:
    return Context(f"arn:aws:lambda:{REGION}:{account}:function:animl-ingest-test-{function}")


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(bucket_owner, "_invocation_account", None)  # a fresh container
    for name, value in Settings(stage="test", region=REGION).to_environment().items():
        monkeypatch.setenv(name, value)
    reset_runtime()
    with mock_aws():
        yield
    reset_runtime()


@pytest.mark.usefixtures("container")
def test_a_state_machine_task_remembers_the_account_it_runs_in() -> None:
    for account in ("111122223333", "444455556666"):
        handlers.check_inference({"batchId": "b-1"}, context_in(account, "check_inference"))
        assert bucket_owner.invocation_account() == account


@pytest.mark.usefixtures("container")
def test_an_event_handler_remembers_the_account_it_runs_in() -> None:
    scheduled = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event",
                 "source": "aws.events", "account": "111122223333", "time": "2026-01-01T00:00:00Z",
                 "region": REGION, "resources": [], "detail": {}}
    with pytest.raises(ClientError, match="ParameterNotFound"):  # no API settings in moto
        handlers.sweep_inference_resources(
            scheduled, context_in("111122223333", "sweep_inference_resources"))
    assert bucket_owner.invocation_account() == "111122223333"
