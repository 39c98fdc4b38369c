"""The stand-in's fault injection, its thread safety and its refusal of malformed requests."""

from __future__ import annotations

import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from animl_local.engine import EmbeddedStage
from animl_local.standin_api import Fault, StandinApi
from animl_local.standin_api.server import FAULT_KINDS, RandomFaults
from functions.batch import inference
from functions.platform.graphql_client import (
    GET_IMAGE,
    IMAGE_ERRORS,
    AnimlApiClient,
    RetryPolicy,
)
from tests.animl_local.test_standin_api import md
from tests.conftest import API_KEY, create_batch
from tests.leftovers import eventually

NO_RETRIES = RetryPolicy(attempts=1, base_seconds=0, cap_seconds=0, margin_seconds=0)


def raw_request(url: str, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are (no client library cleans them) and read the whole answer."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(head + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def post_head(key: bytes, length: bytes) -> bytes:
    return (b"POST /internal/graphql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"content-type: application/json\r\nx-api-key: " + key +
            b"\r\ncontent-length: " + length + b"\r\n\r\n")


BODY = b'{"query": "{ __typename }"}'


@pytest.mark.parametrize("key", [
    "ключ-api".encode(), "clé".encode("latin-1"), b"\xff\xfe\x00bad", b"", b" " * 4096,
    API_KEY.encode() + "é".encode(),
])
def test_a_malformed_key_gets_a_401_and_the_server_keeps_answering(
        standin_api: StandinApi, key: bytes) -> None:
    answer = raw_request(standin_api.url, post_head(key, str(len(BODY)).encode()), BODY)
    assert answer.startswith(b"HTTP/1.0 401") or answer.startswith(b"HTTP/1.1 401")
    assert b"Authentication error" in answer
    ok = raw_request(standin_api.url, post_head(API_KEY.encode(), str(len(BODY)).encode()), BODY)
    assert b" 200 " in ok.split(b"\r\n")[0]


@pytest.mark.parametrize("length", [b"-5", b"abc", b"1e3", b"\xd9\xa3"])
def test_a_bad_content_length_gets_a_400(standin_api: StandinApi, length: bytes) -> None:
    answer = raw_request(standin_api.url, post_head(API_KEY.encode(), length), BODY)
    assert b" 400 " in answer.split(b"\r\n")[0]


def client(standin_api: StandinApi, timeout: float = 10) -> AnimlApiClient:
    return AnimlApiClient(standin_api.url, API_KEY, timeout=timeout, retry=NO_RETRIES)


def post(standin_api: StandinApi, query: str, variables: dict, timeout: float = 10
         ) -> requests.Response:
    return requests.post(standin_api.url, json={"query": query, "variables": variables},
                         headers={"x-api-key": API_KEY}, timeout=timeout)


def test_a_committed_fault_runs_the_operation_and_loses_the_answer(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    from functions.platform.graphql_client import CREATE_IMAGE

    batch_id = create_batch(api_client, serial="CAM-1")
    standin_api.faults.append(Fault("createImage", 503, commit=True))
    answer = post(standin_api, CREATE_IMAGE, {"input": {"md": md(batchId=batch_id)}})
    assert answer.status_code == 503
    assert [i["_id"] for i in standin_api.store.images(batch_id)] == ["default_project:h1"]


def test_an_uncommitted_fault_runs_nothing(standin_api: StandinApi,
                                           api_client: AnimlApiClient) -> None:
    from functions.platform.graphql_client import CREATE_IMAGE

    batch_id = create_batch(api_client, serial="CAM-1")
    standin_api.faults.append(Fault("createImage", 500))
    answer = post(standin_api, CREATE_IMAGE, {"input": {"md": md(batchId=batch_id)}})
    assert answer.status_code == 500
    assert standin_api.store.images(batch_id) == []


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.slow)  # held for seconds
                                  if k.endswith("timeout") else k for k in FAULT_KINDS])
def test_each_random_fault_kind_answers_as_it_says(standin_api: StandinApi, kind: str) -> None:
    # A held answer is held for far longer than a caller waits for an answer that is not held,
    # so the test tells them apart without timing anything (CI machines are slow and noisy).
    held = kind.endswith("timeout")
    standin_api.random_faults = RandomFaults(rate=1.0, seed=1, kinds=(kind,),
                                             hold_seconds=1.0 if held else 120.0,
                                             retry_after_seconds=7)
    try:
        answer = post(standin_api, GET_IMAGE, {"input": {"imageId": "p:h"}},
                      timeout=0.5 if held else 30.0)
    except requests.Timeout:
        answer = None
    if held:
        assert answer is None  # held past the caller's timeout
        time.sleep(1.0)  # the held answer goes out before the server stops
    else:
        assert answer is not None and answer.status_code == int(kind.rsplit("-", 1)[-1])
        assert answer.headers.get("retry-after") == ("7" if kind == "429" else None)
    assert standin_api.random_faults.injected == {("image", kind): 1}
    committed = standin_api.received or []
    assert len(committed) == (1 if kind.startswith("commit-then-") else 0)


@pytest.mark.slow  # 600 requests
def test_random_faults_hit_at_their_rate_only_ingests_operations_and_replay_by_seed(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    def run(seed: int) -> list[int]:
        standin_api.random_faults = RandomFaults(rate=0.2, seed=seed, kinds=("503", "500"))
        return [post(standin_api, GET_IMAGE, {"input": {"imageId": "p:h"}}).status_code
                for _ in range(200)]

    first, again, other = run(5), run(5), run(6)
    assert first == again != other
    failed = sum(status >= 500 for status in first)
    assert 20 <= failed <= 60  # 40 expected
    labels = ("mutation L($input: CreateInternalLabelsInput!) { createInternalLabels(input: "
              "$input) { isOk } }")
    standin_api.random_faults = RandomFaults(rate=1.0)
    answer = post(standin_api, labels, {"input": {"imageId": "p:h", "labels": []}})
    assert answer.status_code == 200  # the service's own worker is not ingest: no faults
    assert standin_api.random_faults.count() == 0


def test_random_faults_reach_ingests_image_error_lookup_too(standin_api: StandinApi) -> None:
    # The lookup made before a createImageError is sent again is ingest's call like any other.
    standin_api.random_faults = RandomFaults(rate=1.0, kinds=("503",))
    answer = post(standin_api, IMAGE_ERRORS, {"input": {"filters": {"batch": "batch-1"}}})
    assert answer.status_code == 503
    assert standin_api.random_faults.injected == {("imageErrors", "503"): 1}


def test_an_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kinds"):
        RandomFaults(rate=0.1, kinds=("418",))


@pytest.mark.slow
def test_concurrent_saves_each_send_their_inference_request(
        stage: EmbeddedStage, standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    # Each save sends to the batch's mapped queue while its pollers receive and delete: moto's
    # SQS is not safe for that ("Set changed size during iteration", or a message sent during
    # a delete was dropped) and the image's inference request was lost.
    batch_id = create_batch(api_client, serial="CAM-1")
    inference.provision_inference(
        inference.Clients(sqs=stage.client("sqs"), lambda_=stage.client("lambda")),
        stage.settings, batch_id)

    once = client(standin_api, timeout=120)  # a retry would hide a lost answer

    def save(index: int) -> list:
        return once.create_image(md(batchId=batch_id, Hash=f"h{index}"))["errors"]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch all the time: a race shows, not once in a while
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            errors = list(pool.map(save, range(120)))
    finally:
        sys.setswitchinterval(interval)

    assert errors == [[] for _ in range(120)]
    assert len(standin_api.store.images(batch_id)) == 120
    # Labelled behind the queue, as on AWS: each request is consumed, none is lost.
    eventually(lambda: all(image["labels"] for image in standin_api.store.images(batch_id)),
               seconds=60, what="every saved image's label")
