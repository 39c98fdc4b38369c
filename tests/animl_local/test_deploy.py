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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto.server import ThreadedMotoServer

from animl_local import moto_cloudformation, webapp
from animl_local.aws_stage import Stage
from animl_local.deploy import DeployError, deploy, teardown
from animl_local.engine import ENGINE_CONFIG, LOCAL_TUNING, moto_config_restored
from animl_local.lambda_adapter import handlers_serve_invocations
from animl_local.stack import MOTO_PARAMETERS, STAGE_SETTINGS_PATH
from animl_local.standin_api import StandinApi, StandinAws
from functions.platform.graphql_client import AnimlApiClient
from functions.platform.settings import Settings
from tests.conftest import REPO, create_batch, jpeg_bytes, zip_bytes
from tests.leftovers import eventually

# Runs whole batches on the embedded engine (or deploys, or packages): the full tier.
pytestmark = pytest.mark.slow

REGION = "us-west-2"
KEY = "deploy-test-key"
INGEST_DELETE = Settings(stage="dev").ingest_delete_function_name
# What IngestDelete-<stage> shares with Chalice's ingest_delete, code included.
SHARED_CONFIGURATION = ("Handler", "Runtime", "Role", "Timeout", "MemorySize", "Environment",
                        "CodeSha256")
PROJECT_ITEMS = ["app.py", "requirements.txt", ".chalice", "chalice_app", "functions", "vendor",
                 "statemachine", "infrastructure"]
STAGES = json.loads(STAGE_SETTINGS_PATH.read_text())


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    port = server._server.server_port  # the port it picked
    url = f"http://127.0.0.1:{port}"
    # Every AWS client of this process, the handlers' included, talks to the server; the
    # engine's own Lambda calls find it through MOTO_PORT.
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("MOTO_PORT", str(port))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with moto_config_restored():  # the config below is global in this process
        requests.post(f"{url}/moto-api/config", json=ENGINE_CONFIG,
                      timeout=10).raise_for_status()
        moto_cloudformation.install()
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


def parameter_names() -> list[str]:
    ssm = boto3.client("ssm", region_name=REGION)
    return sorted(p["Name"] for page in ssm.get_paginator("describe_parameters").paginate()
                  for p in page["Parameters"])


def inventory() -> dict[str, Any]:
    s3 = boto3.client("s3", region_name=REGION)
    lam = boto3.client("lambda", region_name=REGION)
    cloudfront = boto3.client("cloudfront", region_name=REGION)
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]
                            if f["FunctionName"].startswith(("animl-ingest-", INGEST_DELETE))),
        "ingestDelete": shared_configuration(INGEST_DELETE),
        "machines": [m["name"] for m in boto3.client("stepfunctions", region_name=REGION)
                     .list_state_machines()["stateMachines"]],
        "roles": sorted(r["RoleName"] for r in boto3.client("iam", region_name=REGION)
                        .list_roles()["Roles"] if r["RoleName"].startswith("animl-ingest")),
        "parameters": [name for name in parameter_names() if name.startswith("/images/")],
        "distributions": [d["Id"] for d in cloudfront.list_distributions()["DistributionList"]
                          .get("Items", [])],
        "stacks": [s["StackName"] for s in boto3.client("cloudformation", region_name=REGION)
                   .describe_stacks()["Stacks"]],
    }


def test_a_stage_deploys_updates_ingests_stops_and_tears_down(
        moto_server: str, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(stage="dev", region=REGION)
    # The deployed functions' environment (from .chalice/config.json), plus quick inference polls.
    for name, value in {**settings.to_environment(), "INFERENCE_IDLE_POLLS": "2"}.items():
        monkeypatch.setenv(name, value)
    tuning = {**LOCAL_TUNING, "InferencePollSeconds": 2}
    aws = StandinAws("dev", REGION, "123456789012")
    with StandinApi(tmp_path / "api.sqlite3", KEY, aws=aws) as standin, \
            handlers_serve_invocations():
        stage = Stage(settings, boto3.session.Session(region_name=REGION), project_dir=project)
        with pytest.raises(DeployError, match="deploy animl-api first"):
            deploy(stage, tuning=tuning, overrides=MOTO_PARAMETERS)
        api_of_the_animl_stack(standin)

        first = deploy(stage, tuning=tuning, overrides=MOTO_PARAMETERS)
        after_first = inventory()
        second = deploy(stage, tuning=tuning, overrides=MOTO_PARAMETERS)

        assert (first["stack"], second["stack"]) == ("created", "unchanged")
        assert inventory() == after_first
        assert second["stateMachineArn"] == first["stateMachineArn"]
        assert after_first["machines"] == ["animl-ingest-dev-IngestBatch"]
        assert after_first["stacks"] == ["animl-ingest-dev"]
        assert set(settings.buckets) <= set(after_first["buckets"])
        assert "animl-ingest-dev-on_upload" in after_first["functions"]
        # The API's stopBatch invokes IngestDelete-dev: a copy of Chalice's ingest_delete.
        assert first["ingestDelete"] == second["ingestDelete"] == INGEST_DELETE
        assert after_first["ingestDelete"]["Handler"] == "chalice_app.handlers.ingest_delete"
        assert after_first["ingestDelete"] == shared_configuration(
            "animl-ingest-dev-ingest_delete")
        stage_serves_images_as_the_api_expects(settings)
        buckets_are_private_with_their_settings(settings)

        client = AnimlApiClient(standin.url, KEY)
        s3 = boto3.client("s3", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        executions = first["stateMachineArn"].replace(":stateMachine:", ":execution:")
        batch_id = create_batch(client, serial="CAM-1")
        s3.put_object(Bucket=settings.ingestion_bucket, Key=f"{batch_id}.zip",
                      Body=zip_bytes({"a.jpg": jpeg_bytes(tmp_path), "b.jpg": jpeg_bytes(
                          tmp_path, seed=2)}))
        assert wait(sfn, f"{executions}:{batch_id}") == "SUCCEEDED"
        batch = standin.store.batch(batch_id)
        assert batch is not None
        assert batch["total"] == 2 and batch["processingEnd"]

        # The web app's Stop button: stopBatch -> IngestDelete-dev {"batch": id}.
        running = create_batch(client, serial="CAM-1")
        s3.put_object(Bucket=settings.ingestion_bucket, Key=f"{running}.zip",
                      Body=zip_bytes({"c.jpg": jpeg_bytes(tmp_path, seed=3)}))
        wait_for_inference(sfn, f"{executions}:{running}")
        webapp.stop_batch(client, running)
        assert wait(sfn, f"{executions}:{running}") == "ABORTED"
        stopped = standin.store.batch(running)
        assert stopped is not None
        assert stopped["stoppingInitiated"] and stopped["processingEnd"]

        assert teardown(stage) == {"stage": "dev", "bucketsKept": []}
        left = inventory()
        assert left["functions"] == left["machines"] == left["roles"] == []
        assert left["parameters"] == left["distributions"] == left["stacks"] == []
        assert left["ingestDelete"] is None
        assert not set(settings.buckets) & set(left["buckets"])


def stage_serves_images_as_the_api_expects(settings: Settings) -> None:
    """The three parameters the API's config loader requires, and what stands behind them."""
    ssm = boto3.client("ssm", region_name=REGION)
    cloudfront = boto3.client("cloudfront", region_name=REGION)

    def parameter(name: str) -> dict[str, Any]:
        return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]

    domain = parameter("/images/url-dev")["Value"]
    key_id = parameter("/images/cloudfront-public-key-id-dev")["Value"]
    private = parameter("/images/cloudfront-distribution-privatekey-dev")
    assert private["Type"] == "SecureString"

    [summary] = cloudfront.list_distributions()["DistributionList"]["Items"]
    assert summary["DomainName"] == domain
    config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
    [origin] = config["Origins"]["Items"]
    assert origin["DomainName"] == f"{settings.serving_bucket}.s3.{REGION}.amazonaws.com"
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    [group_id] = behavior["TrustedKeyGroups"]["Items"]
    group = cloudfront.get_key_group(Id=group_id)["KeyGroup"]["KeyGroupConfig"]
    assert group["Items"] == [key_id]

    # A URL signed with the stored private key verifies with the distribution's public key.
    encoded = cloudfront.get_public_key(Id=key_id)["PublicKey"]["PublicKeyConfig"]["EncodedKey"]
    private_key = serialization.load_pem_private_key(private["Value"].encode(), password=None)
    public_key = serialization.load_pem_public_key(encoded.encode())
    assert isinstance(private_key, rsa.RSAPrivateKey)
    assert isinstance(public_key, rsa.RSAPublicKey)
    policy = f"https://{domain}/original/x.jpg".encode()
    public_key.verify(private_key.sign(policy, padding.PKCS1v15(), hashes.SHA1()), policy,
                      padding.PKCS1v15(), hashes.SHA1())

    served = json.loads(boto3.client("s3", region_name=REGION).get_bucket_policy(
        Bucket=settings.serving_bucket)["Policy"])
    readers = [s for s in served["Statement"] if s["Effect"] == "Allow"]
    assert readers == [{
        "Sid": "OnlyTheServingDistributionReads", "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"}, "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{settings.serving_bucket}/*",
        "Condition": {"StringEquals": {"AWS:SourceArn":
                                       f"arn:aws:cloudfront::123456789012:distribution/"
                                       f"{summary['Id']}"}}}]


def buckets_are_private_with_their_settings(settings: Settings) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in settings.buckets:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4, bucket
        rules = s3.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    [cors] = s3.get_bucket_cors(Bucket=settings.ingestion_bucket)["CORSRules"]
    assert set(cors["AllowedMethods"]) == {"PUT", "POST"}
    assert cors["ExposeHeaders"] == ["ETag"]
    assert cors["AllowedOrigins"] == STAGES["dev"]["parameters"]["WebAppOrigins"].split(",")
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=settings.ingestion_bucket)  # dev names no base station
    [expiry] = s3.get_bucket_lifecycle_configuration(Bucket=settings.batch_work_bucket)["Rules"]
    assert expiry["Expiration"]["Days"] == int(
        STAGES["dev"]["parameters"]["BatchObjectsExpireAfterDays"])


def status_of(sfn: Any, arn: str) -> str:
    try:
        return str(sfn.describe_execution(executionArn=arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return "PENDING"


def wait(sfn: Any, arn: str, seconds: float = 120) -> str:
    """The execution's status once it has ended."""
    return eventually(lambda: (status := status_of(sfn, arn)) not in ("PENDING", "RUNNING")
                      and status, seconds=seconds, poll=0.25, what=f"the end of {arn}")


def last_event_type(sfn: Any, arn: str) -> str | None:
    try:
        events = sfn.get_execution_history(executionArn=arn)["events"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return None
    return str(events[-1]["type"]) if events else None


def wait_for_inference(sfn: Any, arn: str, seconds: float = 60) -> None:
    """Until the execution sits in AwaitInference's Wait (see the stop tests on the engine)."""
    eventually(lambda: last_event_type(sfn, arn) == "WaitStateEntered", seconds=seconds,
               poll=0.05, what="the batch waiting for inference")
