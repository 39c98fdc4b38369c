"""The stand-in behaves as the API contract says, over real HTTP."""

from __future__ import annotations

import pytest
import requests

from animl_local.standin_api import StandinApi
from animl_local.standin_api.store import normalise_key
from functions.platform.graphql_client import (
    GET_IMAGE,
    AnimlApiClient,
    AnimlApiRefused,
    AnimlApiRejected,
)
from tests.conftest import API_KEY, TEST_SETTINGS, create_batch


def md(**fields: object) -> dict:
    base = {"Hash": "h1", "SerialNumber": "CAM-1", "DateTimeOriginal": "2024-06-01T12:00:00",
            "FileName": "a.jpg", "ImageBytes": 1000, "errors": []}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


@pytest.mark.parametrize("key, expected", [
    ("Hash", "hash"), ("SerialNumber", "serialNumber"), ("MIMEType", "MIMEType"),
    ("GPSLatitude", "GPSLatitude"), ("batchId", "batchId"),
])
def test_keys_are_normalised_as_the_service_does(key: str, expected: str) -> None:
    assert normalise_key(key) == expected


def test_a_request_without_the_right_key_is_rejected(standin_api: StandinApi) -> None:
    for headers in ({}, {"x-api-key": "wrong"}):
        reply = requests.post(standin_api.url, json={"query": GET_IMAGE},
                              headers=headers, timeout=5)
        assert reply.status_code == 401
        assert "Authentication" in reply.json()["errors"][0]["message"]


def test_a_batch_image_takes_the_batch_project_and_the_hash_id(s3, api_client: AnimlApiClient
                                                               ) -> None:
    batch_id = create_batch(api_client)
    attempt = api_client.create_image(md(batchId=batch_id))
    assert attempt["_id"] == "default_project:h1"
    # Saved; its inference request failed (the batch has no queue), which comes back as an error.
    [enqueue_failure] = attempt["errors"]
    assert "queue" in enqueue_failure["error"].lower()
    assert api_client.get_image("default_project:h1")["batchId"] == batch_id


def test_a_wireless_image_takes_its_registered_camera_project(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    standin_api.store.register_camera("CAM-7", "sci")  # the web app's camera registry
    assert api_client.create_image(md(SerialNumber="CAM-7"))["_id"] == "sci:h1"
    assert api_client.create_image(md(SerialNumber="CAM-8", Hash="h2"))["_id"] == (
        "default_project:h2")


@pytest.mark.parametrize("fields, expected", [
    ({"SerialNumber": "unknown"}, ["Unknown Serial Number"]),
    ({"SerialNumber": ""}, ["Unknown Serial Number"]),
    ({"DateTimeOriginal": None}, ["Unknown DateTimeOriginal"]),
    ({"ImageBytes": 8_000_000}, ["Image Size Exceed 8 MB"]),
    ({"errors": ["corrupted image file: broken data stream"]},
     ["corrupted image file: broken data stream"]),
    ({"SerialNumber": "unknown", "DateTimeOriginal": None},
     ["Unknown Serial Number", "Unknown DateTimeOriginal"]),
])
def test_validation_errors_are_returned_not_thrown(api_client: AnimlApiClient, fields: dict,
                                                   expected: list[str]) -> None:
    attempt = api_client.create_image(md(**fields))
    assert [e["error"] for e in attempt["errors"]] == expected
    assert api_client.get_image(attempt["_id"]) is None  # not saved


def test_the_same_image_again_is_an_e11000_duplicate(api_client: AnimlApiClient) -> None:
    first = api_client.create_image(md())
    second = api_client.create_image(md(FileName="b.jpg"))
    assert first["errors"] == []
    assert first["_id"] == second["_id"]
    assert "E11000 duplicate key" in second["errors"][0]["error"]


@pytest.mark.parametrize("serial", ["UNKNOWN", "Unknown"])
def test_the_unknown_serial_check_is_case_sensitive_as_in_the_service(
        api_client: AnimlApiClient, serial: str) -> None:
    attempt = api_client.create_image(md(SerialNumber=serial))
    assert attempt["errors"] == []


def test_a_missing_serial_is_thrown_before_anything_is_recorded(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    with pytest.raises(AnimlApiRejected, match="toString"):
        api_client.create_image(md(SerialNumber=None))
    assert standin_api.store.image_errors(None) == []


def test_override_serial_replaces_an_unknown_serial(api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client, serial="FIXED-1")
    attempt = api_client.create_image(md(batchId=batch_id, SerialNumber="unknown"))
    assert [e["error"] for e in attempt["errors"]] != ["Unknown Serial Number"]


def test_an_unknown_batch_is_thrown_after_recording_an_image_error(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    missing = "batch-00000000-0000-0000-0000-000000000000"
    with pytest.raises(AnimlApiRejected, match="reading 'projectId'") as thrown:
        api_client.create_image(md(batchId=missing, Path="cam/a.jpg"))
    assert thrown.value.code == "INTERNAL_SERVER_ERROR"
    [error] = standin_api.store.image_errors(missing)
    assert error["path"] == "cam/a.jpg"
    with pytest.raises(AnimlApiRejected, match="Batch not found"):
        api_client.update_batch(missing, total=1)


def test_update_batch_copies_fields_and_errors_are_listed(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client)
    returned = api_client.update_batch(batch_id, total=5, uploadComplete="2024-01-01T00:00:00Z")
    api_client.create_batch_error(batch_id, "Bad archive: nope")
    batch = standin_api.store.batch(batch_id)
    assert (batch["total"], batch["uploadComplete"]) == (5, "2024-01-01T00:00:00Z")
    assert (returned["total"], returned["uploadComplete"]) == (5, "2024-01-01T00:00:00Z")
    assert [e["error"] for e in batch["errors"]] == ["Bad archive: nope"]


@pytest.mark.sends_refused_requests
def test_create_upload_takes_only_what_the_service_takes(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    with pytest.raises(AnimlApiRefused, match="HTTP 400.*overrideSerial"):
        api_client.execute(
            "mutation U($input: CreateUploadInput!) { createUpload(input: $input) { batch } }",
            {"input": {"originalFile": "a.zip", "overrideSerial": "X"}})


@pytest.mark.sends_refused_requests
@pytest.mark.parametrize("query, variables", [
    ("query Batch($id: String!) { batch(_id: $id) { _id } }", {"id": "b"}),
    ("query Image($input: QueryImageInput!) { image(input: $input) { _id hash } }",
     {"input": {"imageId": "p:h"}}),
    ("mutation E($input: CreateImageErrorInput!) { createImageError(input: $input) { _id } }",
     {"input": {"error": "x", "image": "i"}}),
    ("mutation B($input: UpdateBatchInput!) { updateBatch(input: $input) { batch { _id } } }",
     {"input": {"_id": "b", "uploadComplete": 12345}}),
    ("mutation I($input: CreateImageInput!) "
     "{ createImage(input: $input) { imageAttempt { _id } } }",
     {"input": {"md": ["not", "an", "object"]}}),
    ("query { image(input: {imageId: \"x\"}) { _id ", None),
])
def test_what_the_schema_refuses_gets_http_400(standin_api: StandinApi, query: str,
                                               variables: dict | None) -> None:
    reply = requests.post(standin_api.url, json={"query": query, "variables": variables},
                          headers={"x-api-key": API_KEY}, timeout=5)
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["extensions"]["code"] in (
        "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")


def test_a_request_that_is_not_json_is_refused_as_apollo_does(standin_api: StandinApi) -> None:
    reply = requests.post(standin_api.url, data=f'{{"query": "{GET_IMAGE}"}}',
                          headers={"x-api-key": API_KEY, "content-type": "text/plain"}, timeout=5)
    assert reply.status_code == 400 and "CSRF" in reply.json()["errors"][0]["message"]


def test_an_image_that_does_not_exist_is_an_error_not_null(standin_api: StandinApi) -> None:
    reply = requests.post(standin_api.url, json={"query": GET_IMAGE, "variables": {
        "input": {"imageId": "p:none"}}}, headers={"x-api-key": API_KEY}, timeout=5)
    assert reply.status_code == 200
    [error] = reply.json()["errors"]
    assert (error["message"], error["extensions"]["code"]) == ("Image not found", "NOT_FOUND")


def test_stop_batch_marks_the_batch_and_refuses_a_second_stop(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    from animl_local.webapp import stop_batch

    batch_id = create_batch(api_client)
    stop_batch(api_client, batch_id)  # no IngestDelete here: its invoke fails in the background
    assert standin_api.store.batch(batch_id)["stoppingInitiated"]
    with pytest.raises(AnimlApiRejected, match="already scheduled for deletion"):
        stop_batch(api_client, batch_id)
    api_client.update_batch(batch_id, processingEnd="2024-01-01T00:00:00Z")
    with pytest.raises(AnimlApiRejected, match="already terminated"):
        stop_batch(api_client, batch_id)


def test_create_image_error_records_image_and_batch(api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client)
    recorded = api_client.create_image_error("p:h", batch_id, "boom")
    assert (recorded["image"], recorded["batch"], recorded["error"]) == ("p:h", batch_id, "boom")


def test_the_database_persists_across_restarts(tmp_path) -> None:
    db = tmp_path / "api.sqlite3"
    with StandinApi(db, "k") as api:
        batch_id = create_batch(AnimlApiClient(api.url, "k"))
    with StandinApi(db, "k") as api:
        assert api.store.batch(batch_id)["_id"] == batch_id


def test_runs_on_its_own_from_the_command_line(tmp_path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "ANIML_API_KEY": "cli-key"}
    proc = subprocess.Popen([sys.executable, "-m", "animl_local.standin_api", "--db",
                             str(tmp_path / "db.sqlite3")], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        line = proc.stdout.readline()
        url = line.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert AnimlApiClient(url, "cli-key").get_image("p:h") is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_web_apps_upload_creates_the_batch_and_completes_its_zip(
        s3, standin_api: StandinApi, api_client: AnimlApiClient, tmp_path) -> None:
    from animl_local import webapp

    archive = tmp_path / "cards.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    batch_id = webapp.upload_batch(api_client, archive, "cards.zip", serial="CAM-1")

    stored = s3.get_object(Bucket=TEST_SETTINGS.ingestion_bucket, Key=f"{batch_id}.zip")
    assert stored["Body"].read() == archive.read_bytes()
    batch = standin_api.store.batch(batch_id)
    assert (batch["originalFile"], batch["overrideSerial"]) == ("cards.zip", "CAM-1")


def test_a_zip_of_several_parts_arrives_whole(s3, standin_api: StandinApi,
                                             api_client: AnimlApiClient, tmp_path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    from animl_local import webapp

    monkeypatch.setattr(webapp, "PART_BYTES", 5 * 1024 * 1024)  # S3's smallest part
    archive = tmp_path / "big.zip"
    archive.write_bytes(random.Random(3).randbytes(12 * 1024 * 1024 + 17))
    batch_id = webapp.upload_batch(api_client, archive, "big.zip")

    stored = s3.get_object(Bucket=TEST_SETTINGS.ingestion_bucket, Key=f"{batch_id}.zip")
    assert stored["Body"].read() == archive.read_bytes()


def test_concurrent_requests_all_get_their_answer(standin_api: StandinApi,
                                                  api_client: AnimlApiClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    batch_id = create_batch(api_client, serial="CAM-1")

    def save(index: int) -> list[dict]:
        attempt = api_client.create_image(md(Hash=f"h{index}", FileName=f"{index}.jpg"))
        api_client.get_image(attempt["_id"])
        api_client.update_batch(batch_id, total=index)
        return attempt["errors"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(save, range(160)))

    assert answers == [[] for _ in range(160)]
    assert len(standin_api.store.images(None)) == 160
