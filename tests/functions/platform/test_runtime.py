"""A Lambda container's runtime: built once, the API's key re-read after its TTL or a 401."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from animl_local.standin_api import StandinApi
from functions.platform.runtime import (
    API_CREDENTIALS_TTL_SECONDS,
    Runtime,
    account_of,
    remaining_seconds_of,
)
from functions.platform.settings import Settings
from tests.conftest import REGION

SETTINGS = Settings(stage="test", region=REGION)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api(tmp_path: Path) -> Iterator[StandinApi]:
    with StandinApi(tmp_path / "api.sqlite3", "new-key") as standin:
        yield standin


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def store_credentials(url: str, key: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=SETTINGS.api_url_parameter, Value=url, Type="String", Overwrite=True)
    secrets = boto3.client("secretsmanager", region_name=REGION)
    body = json.dumps({"apikey": key})
    try:
        secrets.put_secret_value(SecretId=SETTINGS.api_key_secret, SecretString=body)
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(Name=SETTINGS.api_key_secret, SecretString=body)


def test_clients_and_the_api_client_are_built_once(aws: None, api: StandinApi) -> None:
    store_credentials(api.url, "new-key")
    runtime = Runtime(SETTINGS)
    assert runtime.client("s3") is runtime.client("s3")
    assert runtime.api() is runtime.api()


def test_an_invocations_api_client_shares_the_containers_and_keeps_its_clock(
        aws: None, api: StandinApi) -> None:
    store_credentials(api.url, "new-key")
    runtime = Runtime(SETTINGS)

    class Context:
        def get_remaining_time_in_millis(self) -> int:
            return 42_000

    bound = runtime.api(remaining_seconds_of(Context()))
    assert bound.session is runtime.api().session
    assert bound.remaining_seconds is not None and bound.remaining_seconds() == 42.0
    assert runtime.api().remaining_seconds is None
    assert bound.retry.attempts == SETTINGS.api_retry_attempts


def test_the_key_is_read_again_after_its_ttl(aws: None, api: StandinApi) -> None:
    clock = Clock()
    store_credentials(api.url, "old-key")
    runtime = Runtime(SETTINGS, clock=clock)
    assert runtime.api().api_key == "old-key"
    store_credentials(api.url, "new-key")
    clock.now += API_CREDENTIALS_TTL_SECONDS - 1
    assert runtime.api().api_key == "old-key"  # within the TTL: no read
    clock.now += 2
    assert runtime.api().api_key == "new-key"


def test_a_rotated_key_is_read_again_at_the_first_401(aws: None, api: StandinApi) -> None:
    store_credentials(api.url, "old-key")
    client = Runtime(SETTINGS).api()
    store_credentials(api.url, "new-key")  # rotated; the API now wants the new one
    assert client.get_image("p:h") is None
    assert client.api_key == "new-key"


def test_the_account_comes_from_the_invocation_context() -> None:
    class Context:
        invoked_function_arn = "arn:aws:lambda:us-west-2:210987654321:function:f"

    assert account_of(Context()) == "210987654321"


def test_the_container_decodes_within_one_budget_of_its_settings() -> None:
    rt = Runtime(Settings(stage="test", decode_budget_bytes=12345))
    assert rt.decode_budget.limit_bytes == 12345
