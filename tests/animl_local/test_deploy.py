"""`animl-ingest deploy` against a moto server: from scratch, again, a batch, and teardown."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from animl_local.aws_stage import Stage
from animl_local.deploy import deploy, state_machine_policy, teardown
from animl_local.engine import ENGINE_CONFIG, LOCAL_TUNING
from animl_local.lambda_adapter import handlers_serve_invocations
from animl_local.standin_api import StandinApi, StandinAws
from functions.graphql_client import AnimlApiClient
from functions.settings import Settings
from tests.conftest import REPO, create_batch, jpeg_bytes, zip_bytes

REGION = "us-west-2"
KEY = "deploy-test-key"
INGEST_DELETE = Settings(stage="dev").ingest_delete_function_name
# What IngestDelete-<stage> shares with Chalice's ingest_delete, code included.
SHARED_CONFIGURATION = ("Handler", "Runtime", "Role", "Timeout", "MemorySize", "Environment",
                        "CodeSha256")
PROJECT_ITEMS = ["app.py", "requirements.txt", ".chalice", "chalice_app", "functions", "vendor",
                 "statemachine"]


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port  # noqa: SLF001 - the port it picked
    url = f"http://127.0.0.1:{port}"
    # Every AWS client of this process, the handlers' included, talks to the server; the
    # engine's own Lambda calls find it through MOTO_PORT.
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("MOTO_PORT", str(port))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    requests.post(f"{url}/moto-api/config", json=ENGINE_CONFIG, timeout=10).raise_for_status()
    yield url
    server.stop()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project: Chalice records deployments inside the project folder."""
    copy = tmp_path / "project"
    copy.mkdir()
    for item in PROJECT_ITEMS:
        source = REPO / item
        if source.is_dir():
            shutil.copytree(source, copy / item, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "deployed",
                                                          "deployments"))
        else:
            shutil.copy(source, copy / item)
    return copy


def api_of_the_animl_stack(standin: StandinApi) -> None:
    """What the animl-api deployment provides: its URL, its key, its inference Lambda."""
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/api/url-dev", Value=standin.url, Type="String")
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="api-key-dev", SecretString=json.dumps({"apikey": KEY}))
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName="animl-api-dev", AssumeRolePolicyDocument="{}")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("README", "the API's inference worker; its stand-in runs in-process")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="animl-api-dev-batchinference", Runtime="python3.11",
        Handler="animl_local.inference_consumer.handle", Role=role["Role"]["Arn"],
        Code={"ZipFile": code.getvalue()})


def shared_configuration(function_name: str) -> dict[str, Any] | None:
    lam = boto3.client("lambda", region_name=REGION)
    try:
        configuration = lam.get_function_configuration(FunctionName=function_name)
    except lam.exceptions.ResourceNotFoundException:
        return None
    return {key: configuration.get(key) for key in SHARED_CONFIGURATION}


def inventory() -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    lam = boto3.client("lambda", region_name=REGION)
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]
                            if f["FunctionName"].startswith(("animl-ingest-", INGEST_DELETE))),
        "ingestDelete": shared_configuration(INGEST_DELETE),
        "machines": [m["name"] for m in boto3.client("stepfunctions", region_name=REGION)
                     .list_state_machines()["stateMachines"]],
        "roles": sorted(r["RoleName"] for r in boto3.client("iam", region_name=REGION)
                        .list_roles()["Roles"] if r["RoleName"].startswith("animl-ingest")),
    }


def test_a_stage_deploys_updates_ingests_and_tears_down(
        moto_server: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(stage="dev", region=REGION)
    # The deployed functions' environment (from .chalice/config.json), plus quick inference polls.
    for name, value in {**settings.to_environment(), "INFERENCE_IDLE_POLLS": "2"}.items():
        monkeypatch.setenv(name, value)
    aws = StandinAws("dev", REGION, "123456789012")
    with StandinApi(tmp_path / "api.sqlite3", KEY, aws=aws) as standin, \
            handlers_serve_invocations():
        stage = Stage(settings, boto3.session.Session(region_name=REGION), project_dir=project)
        with pytest.raises(Exception, match="deploy animl-api first"):
            deploy(stage, tuning=LOCAL_TUNING)
        api_of_the_animl_stack(standin)

        first = deploy(stage, tuning=LOCAL_TUNING)
        after_first = inventory()
        second = deploy(stage, tuning=LOCAL_TUNING)  # an update in place

        assert second["stateMachineArn"] == first["stateMachineArn"]
        assert second["bucketsCreated"] == []
        assert inventory() == after_first
        assert after_first["machines"] == ["animl-ingest-dev-IngestBatch"]
        assert set(settings.buckets) <= set(after_first["buckets"])
        assert "animl-ingest-dev-on_upload" in after_first["functions"]
        # The API's stopBatch invokes IngestDelete-dev: a copy of Chalice's ingest_delete.
        assert first["ingestDelete"] == second["ingestDelete"] == INGEST_DELETE
        assert after_first["ingestDelete"]["Handler"] == "chalice_app.handlers.ingest_delete"
        assert after_first["ingestDelete"] == shared_configuration(
            "animl-ingest-dev-ingest_delete")

        client = AnimlApiClient(standin.url, KEY)
        batch_id = create_batch(client, serial="CAM-1")
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_object(Bucket=settings.ingestion_bucket, Key=f"{batch_id}.zip",
                      Body=zip_bytes({"a.jpg": jpeg_bytes(tmp_path), "b.jpg": jpeg_bytes(
                          tmp_path, seed=2)}))
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = first["stateMachineArn"].replace(":stateMachine:", ":execution:") + f":{batch_id}"
        status = wait(sfn, arn)
        assert status == "SUCCEEDED"
        batch = standin.store.batch(batch_id)
        assert batch is not None
        assert batch["total"] == 2 and batch["processingEnd"]

        teardown(stage)
        left = inventory()
        assert left["functions"] == left["machines"] == left["roles"] == []
        assert left["ingestDelete"] is None
        assert not set(settings.buckets) & set(left["buckets"])


def wait(sfn, arn: str, seconds: float = 120) -> str:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            status = sfn.describe_execution(executionArn=arn)["status"]
        except sfn.exceptions.ExecutionDoesNotExist:
            status = "PENDING"
        if status not in ("PENDING", "RUNNING"):
            return status
        time.sleep(0.25)
    return "STILL_RUNNING"


def test_the_state_machine_role_allows_only_its_own_resources() -> None:
    class FakeStage:
        settings = Settings(stage="dev")
        account = "123456789012"

    policy = state_machine_policy(FakeStage(), {"a": "arn:aws:lambda:us-west-2:1:function:a"})
    resources = json.dumps([s["Resource"] for s in policy["Statement"]])
    assert "*\"" not in resources.replace("/*", "").replace(":*", "")  # no bare wildcards
    assert "animl-ingest-batches-dev" in resources and "IngestBatch" in resources
