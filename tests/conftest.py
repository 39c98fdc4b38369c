"""Shared fixtures: real parts everywhere (moto S3, the stand-in API over HTTP, the real ASL)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from animl_local import aws_limits, webapp
from animl_local.botocore_models import botocore_models_parsed_once
from animl_local.engine import ACCOUNT_ID, LOCAL_TUNING, EmbeddedStage
from animl_local.samples import sample_jpeg
from animl_local.standin_api import StandinApi, StandinAws
from functions.image.ingest_image import Services
from functions.platform.graphql_client import AnimlApiClient, operation_name
from functions.platform.runtime import reset_runtime
from functions.platform.settings import Settings
from tests.contract.schema_check import load_real_schema, request_problems
from tests.leftovers import adopt_orphans, descendants, eventually, our_temp_folders

REPO = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = REPO.parent / "shared" / "fixtures"
CAMERA_TRAPS = SHARED_FIXTURES / "camera-traps"
MALFORMED = SHARED_FIXTURES / "malformed"
API_KEY = "test-key-not-secret"
REGION = "us-west-2"


def pytest_configure(config: pytest.Config) -> None:
    adopt_orphans()
    # A temp root of this session's own, for it and every process it starts: the leftovers
    # check then sees only what this suite made, whatever else runs on the machine.
    scratch = tempfile.mkdtemp(prefix="animl-tests-")
    config.stash[_SCRATCH] = scratch
    os.environ["TMPDIR"] = tempfile.tempdir = scratch


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(_SCRATCH, None)
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


_SCRATCH = pytest.StashKey[str]()


@pytest.fixture(autouse=True, scope="session")
def _one_botocore_loader() -> Iterator[None]:
    """moto gives each mock a new default boto3 session, and a new session parses botocore's
    JSON service models again: 0.1-0.3 s a client. Here sessions share one loader."""
    with botocore_models_parsed_once():
        yield


@pytest.fixture(autouse=True)
def _leaves_nothing_behind() -> Iterator[None]:
    """Every test ends with no process of its own still running and no temp folder of ours:
    commands and servers clean up on success, failure and signals alike."""
    processes, folders = set(descendants()), our_temp_folders()
    yield
    try:
        eventually(lambda: not set(descendants()) - processes, seconds=15)
    except AssertionError:
        left = {pid: command for pid, command in descendants().items() if pid not in processes}
        for pid in left:
            os.kill(pid, signal.SIGKILL)  # the next test starts clean
        raise AssertionError(f"processes left running: {left}") from None
    left = our_temp_folders() - folders
    assert not left, f"temp folders left behind: {sorted(left)}"


@pytest.fixture(autouse=True)
def _fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never reach a real account, whatever the developer's shell has.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # Handlers keep a Lambda container's runtime in module state; each test is a new container.
    reset_runtime()


# The API client's retries wait tenths of seconds here, not seconds.
TEST_SETTINGS = Settings(stage="test", region=REGION, inference_idle_polls=2,
                         inference_max_wait_seconds=30, api_timeout_seconds=2,
                         api_retry_base_seconds=0.05, api_retry_cap_seconds=0.5)


@pytest.fixture
def standin_api(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[StandinApi]:
    """The stand-in, and afterwards the contract check of every request it received: each must
    be one the real service accepts (../shared/contracts/animl-api.graphql), so every test that
    talks to the stand-in checks the real call paths. A test that sends refused requests on
    purpose says so with the `sends_refused_requests` mark."""
    aws = StandinAws(TEST_SETTINGS.stage, REGION, ACCOUNT_ID)
    with StandinApi(tmp_path / "api.sqlite3", API_KEY, aws=aws, record_requests=True) as api:
        yield api
    if request.node.get_closest_marker("sends_refused_requests"):
        return
    schema = load_real_schema()
    problems = [f"{operation_name(body.get('query') or '')}: {problem}"
                for body, _ in api.received or []
                for problem in request_problems(schema, body.get("query") or "",
                                                body.get("variables"))]
    assert problems == [], "requests the real Animl API would refuse"


@pytest.fixture
def api_client(standin_api: StandinApi) -> AnimlApiClient:
    return AnimlApiClient(standin_api.url, API_KEY, timeout=10)


def create_batch(client: AnimlApiClient, serial: str | None = None, name: str = "x.zip") -> str:
    """The batch record as the web app makes it (createUpload, then overrideSerial)."""
    return webapp.create_batch(client, name, serial)["batch"]


@pytest.fixture
def settings() -> Settings:
    return Settings(stage="test", region=REGION)


@pytest.fixture
def s3(settings: Settings) -> Iterator[object]:
    """moto S3 with the stage's buckets."""
    with mock_aws(), aws_limits.enforced():  # as the embedded stage: refuse what AWS refuses
        client = boto3.client("s3", region_name=REGION)
        for bucket in settings.buckets:
            client.create_bucket(Bucket=bucket,
                                 CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


@pytest.fixture
def services(s3: object, api_client: AnimlApiClient, settings: Settings) -> Services:
    return Services(s3=s3, api=api_client, settings=settings)


@pytest.fixture
def stage(standin_api: StandinApi) -> Iterator[EmbeddedStage]:
    with EmbeddedStage(TEST_SETTINGS, standin_api.url, API_KEY) as st:
        yield st


@pytest.fixture
def polling_stage(standin_api: StandinApi) -> Iterator[EmbeddedStage]:
    """A stage whose inference polls wait two seconds: time to stop a batch while it waits."""
    tuning = {**LOCAL_TUNING, "InferencePollSeconds": 2}
    with EmbeddedStage(TEST_SETTINGS, standin_api.url, API_KEY, tuning=tuning) as st:
        yield st


def jpeg_bytes(tmp_path: Path, seed: int = 0, serial: str | None = "CAM-1",
               size: tuple[int, int] = (640, 480)) -> bytes:
    from datetime import datetime

    path = tmp_path / f"sample-{seed}-{os.getpid()}.jpg"
    sample_jpeg(path, datetime(2024, 6, 1, 12, 0, seed % 60), seed=seed, size=size, serial=serial)
    return path.read_bytes()


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()
