"""The stand-in behaves as the API contract says, over real HTTP."""

from __future__ import annotations

import pytest
import requests

from animl_local.standin_api import StandinApi
from animl_local.standin_api.store import normalise_key
from functions.graphql_client import AnimlApiClient, AnimlApiRejected
from tests.conftest import create_batch


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
        reply = requests.post(standin_api.url, json={"query": "{ batches { _id } }"},
                              headers=headers, timeout=5)
        assert reply.status_code == 401
        assert "Authentication" in reply.json()["errors"][0]["message"]


def test_a_batch_image_takes_the_batch_project_and_the_hash_id(api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client)
    attempt = api_client.create_image(md(batchId=batch_id))
    assert attempt["_id"] == "default_project:h1"
    assert attempt["errors"] == []
    assert api_client.get_image("default_project:h1")["batchId"] == batch_id


def test_a_wireless_image_takes_its_registered_camera_project(api_client: AnimlApiClient) -> None:
    api_client.execute('mutation { registerCamera(input: {cameraId: "CAM-7", projectId: "sci"}) '
                       '{ _id } }')
    assert api_client.create_image(md(SerialNumber="CAM-7"))["_id"] == "sci:h1"
    assert api_client.create_image(md(SerialNumber="CAM-8", Hash="h2"))["_id"] == (
        "default_project:h2")


@pytest.mark.parametrize("fields, expected", [
    ({"SerialNumber": "unknown"}, ["Unknown Serial Number"]),
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


def test_override_serial_replaces_an_unknown_serial(api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client, serial="FIXED-1")
    attempt = api_client.create_image(md(batchId=batch_id, SerialNumber="unknown"))
    assert attempt["errors"] == []


def test_an_unknown_batch_is_thrown(api_client: AnimlApiClient) -> None:
    with pytest.raises(AnimlApiRejected, match="Batch not found"):
        api_client.create_image(md(batchId="batch-00000000-0000-0000-0000-000000000000"))
    with pytest.raises(AnimlApiRejected, match="Batch not found"):
        api_client.update_batch("batch-00000000-0000-0000-0000-000000000000", total=1)


def test_update_batch_copies_fields_and_errors_are_listed(api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client)
    api_client.update_batch(batch_id, total=5, uploadComplete="2024-01-01T00:00:00Z")
    api_client.create_batch_error(batch_id, "Bad archive: nope")
    batch = api_client.get_batch(batch_id)
    assert (batch["total"], batch["uploadComplete"]) == (5, "2024-01-01T00:00:00Z")
    assert [e["error"] for e in batch["errors"]] == ["Bad archive: nope"]


def test_create_image_error_requires_image_and_batch(api_client: AnimlApiClient) -> None:
    with pytest.raises(AnimlApiRejected):
        api_client.execute('mutation { createImageError(input: {error: "x", image: "i"}) { _id } }')
    batch_id = create_batch(api_client)
    recorded = api_client.create_image_error("p:h", batch_id, "boom")
    assert (recorded["image"], recorded["batch"], recorded["error"]) == ("p:h", batch_id, "boom")


def test_the_database_persists_across_restarts(tmp_path) -> None:
    db = tmp_path / "api.sqlite3"
    with StandinApi(db, "k") as api:
        batch_id = create_batch(AnimlApiClient(api.url, "k"))
    with StandinApi(db, "k") as api:
        assert AnimlApiClient(api.url, "k").get_batch(batch_id)["_id"] == batch_id


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
        assert AnimlApiClient(url, "cli-key").execute("{ batches { _id } }") == {"batches": []}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
