"""The stand-in behaves as the API contract says, over real HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import threading
import urllib.parse

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
from tests.leftovers import eventually

PAGE_QUERY = """
query ImageErrors($input: QueryImageErrorsInput!) {
  imageErrors(input: $input) {
    pageInfo { previous hasPrevious next hasNext count }
    errors { _id image path error created }
  }
}"""


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
    (PAGE_QUERY, {"input": {"limit": 5}}),  # filters are required
    (PAGE_QUERY, {"input": {"filters": {}}}),  # and so is their batch
    (PAGE_QUERY, {"input": {"batch": "b", "filters": {"batch": "b"}}}),  # not a field here
    (PAGE_QUERY, {"input": {"filters": {"batch": "b"}, "limit": "ten"}}),
    ("query E($input: QueryImageErrorsInput!) { imageErrors(input: $input) "
     "{ pageInfo { total } } }", {"input": {"filters": {"batch": "b"}}}),
    ("query E($input: QueryImageErrorsInput!) { imageErrors(input: $input) }",
     {"input": {"filters": {"batch": "b"}}}),
])
def test_what_the_schema_refuses_gets_http_400(standin_api: StandinApi, query: str,
                                               variables: dict | None) -> None:
    def send() -> requests.Response:
        return requests.post(standin_api.url, json={"query": query, "variables": variables},
                             headers={"x-api-key": API_KEY}, timeout=5)

    first = send()
    assert first.status_code == 400
    assert first.json()["errors"][0]["extensions"]["code"] in (
        "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT")
    # Sent again, it is refused again (the stand-in keeps each document's check).
    again = send()
    assert (again.status_code, again.json()) == (400, first.json())


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


@pytest.mark.slow  # the command, in a process of its own
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


@pytest.mark.slow  # 480 requests
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




def raw_post(connection: http.client.HTTPConnection, body: bytes,
             key: str = API_KEY) -> http.client.HTTPResponse:
    connection.request("POST", "/", body=body, headers={
        "x-api-key": key, "content-type": "application/json"})
    reply = connection.getresponse()
    reply.read()
    return reply


def connection_to(standin_api: StandinApi) -> http.client.HTTPConnection:
    parts = urllib.parse.urlsplit(standin_api.url)
    return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)


def test_one_connection_carries_request_after_request(standin_api: StandinApi) -> None:
    connection = connection_to(standin_api)
    query = json.dumps({"query": "query { __typename }"}).encode()
    try:
        first = raw_post(connection, query)
        socket_used = connection.sock  # None once an answer says the connection closes
        second = raw_post(connection, query)
        assert (first.status, second.status) == (200, 200)
        assert socket_used is not None and connection.sock is socket_used  # not reopened
    finally:
        connection.close()


@pytest.mark.sends_refused_requests
def test_a_request_refused_before_its_body_is_read_closes_its_connection(
        standin_api: StandinApi) -> None:
    # Its unread body must not be taken for the next request on the connection.
    connection = connection_to(standin_api)
    try:
        refused = raw_post(connection, b'{"query": "query { __typename }"}', key="wrong")
        assert refused.status == 401 and refused.getheader("connection") == "close"
        assert raw_post(connection, json.dumps(
            {"query": "query { __typename }"}).encode()).status == 200  # on a new connection
    finally:
        connection.close()


def test_a_stop_answers_the_requests_being_served_and_no_more(tmp_path) -> None:
    # A connection kept alive outlives the server's accept loop: a request sent on it after
    # the stop began must not reach the store the stop closes (a traceback once, on SIGTERM).
    api = StandinApi(tmp_path / "api.sqlite3", API_KEY).start()
    query = json.dumps({"query": "query { __typename }"}).encode()
    idle, busy = connection_to(api), connection_to(api)
    answered: list[int] = []
    try:
        assert raw_post(idle, query).status == 200  # now kept alive, between requests
        api.latency_seconds, api.most_in_flight = 1.0, 0
        served = threading.Thread(target=lambda: answered.append(raw_post(busy, query).status))
        served.start()
        eventually(lambda: api.most_in_flight == 1, seconds=10, what="the request in flight")
        api.stop()  # waits for it
        assert answered == [200]
        with pytest.raises((http.client.HTTPException, OSError)):
            raw_post(idle, query)  # its connection was closed, and nothing listens
        served.join()
    finally:
        idle.close()
        busy.close()

# imageErrors, paged as the service pages them (animl_local/standin_api/paging.py).

def image_errors_page(client: AnimlApiClient, batch_id: str, **paging: object) -> dict:
    return client.execute(PAGE_QUERY, {"input": {"filters": {"batch": batch_id}, **paging}})[
        "imageErrors"]


def walk(client: AnimlApiClient, batch_id: str, **paging: object) -> list[dict]:
    """Every page from the first, following `next` while `hasNext`; its errors in order."""
    found: list[dict] = []
    while True:
        page = image_errors_page(client, batch_id, **paging)
        found += page["errors"]
        if not page["pageInfo"]["hasNext"]:
            assert page["pageInfo"]["next"] is not None or not page["errors"]
            return found
        paging = {**paging, "next": page["pageInfo"]["next"]}


def errors_of_a_batch(standin_api: StandinApi, client: AnimlApiClient, count: int) -> str:
    batch_id = create_batch(client)
    for number in range(count):
        standin_api.store.create_image_error(f"cam/{number}.JPG", batch_id, "bad")
    standin_api.store.create_image_error("cam/0.JPG", "batch-other", "bad")
    return batch_id


def errors_with_and_without_a_path(client: AnimlApiClient) -> str:
    batch_id = create_batch(client, serial="CAM-1")
    for number in range(3):  # createImage's ImageErrors have a path; createImageError's none
        client.create_image(md(Hash=f"h{number}", batchId=batch_id, Path=f"cam/{number}.jpg",
                               errors=["bad"]))
        client.create_image_error(f"cam/x{number}.jpg", batch_id, "refused")
    return batch_id


def test_image_errors_are_the_batchs_fifty_at_a_time_by_id_descending(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    batch_id = errors_of_a_batch(standin_api, api_client, 60)
    ids = sorted((e["_id"] for e in standin_api.store.image_errors(batch_id)), reverse=True)

    page = image_errors_page(api_client, batch_id)

    assert [e["_id"] for e in page["errors"]] == ids[:50]
    info = page["pageInfo"]
    assert (info["count"], info["hasNext"], info["hasPrevious"]) == (60, True, False)
    assert info["previous"] and info["next"]
    assert [e["_id"] for e in walk(api_client, batch_id, limit=7)] == ids


@pytest.mark.parametrize(("limit", "size"), [(0, 1), (-3, 1), (None, 1), (301, 300),
                                             (10_000, 300), (300, 300)])
def test_a_page_holds_one_to_three_hundred(standin_api: StandinApi, api_client: AnimlApiClient,
                                           limit: int | None, size: int) -> None:
    batch_id = errors_of_a_batch(standin_api, api_client, 302)
    assert len(image_errors_page(api_client, batch_id, limit=limit)["errors"]) == size


@pytest.mark.parametrize("ascending", [False, True])
def test_paged_by_created_the_errors_come_in_time_order_each_once(
        standin_api: StandinApi, api_client: AnimlApiClient, ascending: bool) -> None:
    batch_id = errors_of_a_batch(standin_api, api_client, 40)
    stored = standin_api.store.image_errors(batch_id)
    expected = sorted(stored, key=lambda e: (e["created"], e["_id"]), reverse=not ascending)

    found = walk(api_client, batch_id, limit=3, paginatedField="created",
                 sortAscending=ascending)

    assert [e["_id"] for e in found] == [e["_id"] for e in expected]


@pytest.mark.parametrize("ascending", [False, True])
def test_errors_without_the_paged_field_sort_as_null_and_are_each_read_once(
        standin_api: StandinApi, api_client: AnimlApiClient, ascending: bool) -> None:
    batch_id = errors_with_and_without_a_path(api_client)
    stored = standin_api.store.image_errors(batch_id)
    with_path = sorted((e for e in stored if e["path"]), key=lambda e: (e["path"], e["_id"]))
    without = sorted((e for e in stored if not e["path"]), key=lambda e: e["_id"])
    expected = without + with_path  # a missing value sorts first, as null
    if not ascending:
        expected.reverse()

    found = walk(api_client, batch_id, limit=2, paginatedField="path", sortAscending=ascending)

    assert [e["_id"] for e in found] == [e["_id"] for e in expected]


def test_previous_reads_the_page_before_in_the_same_order(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    batch_id = errors_of_a_batch(standin_api, api_client, 12)
    first = image_errors_page(api_client, batch_id, limit=5, paginatedField="created")
    second = image_errors_page(api_client, batch_id, limit=5, paginatedField="created",
                               next=first["pageInfo"]["next"])
    assert second["pageInfo"]["hasPrevious"] is True

    back = image_errors_page(api_client, batch_id, limit=5, paginatedField="created",
                             previous=second["pageInfo"]["previous"])

    assert back["errors"] == first["errors"]
    assert (back["pageInfo"]["hasPrevious"], back["pageInfo"]["hasNext"]) == (False, True)


def test_a_batch_without_errors_has_an_empty_page(api_client: AnimlApiClient) -> None:
    page = image_errors_page(api_client, "batch-none")
    assert page == {"errors": [], "pageInfo": {"previous": None, "hasPrevious": False,
                                               "next": None, "hasNext": False, "count": 0}}


def cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("paging", [
    {"next": "not a cursor!"},  # not base64 of JSON
    {"previous": cursor("x")[:-2]},  # cut short
    {"next": cursor(42), "paginatedField": "created"},  # not a (created, _id) pair
    {"paginatedField": ""},  # no field to sort on
])
def test_a_cursor_or_field_the_service_cannot_read_is_thrown(
        standin_api: StandinApi, paging: dict) -> None:
    reply = requests.post(standin_api.url, json={"query": PAGE_QUERY, "variables": {
        "input": {"filters": {"batch": "batch-1"}, **paging}}},
        headers={"x-api-key": API_KEY}, timeout=5)
    assert reply.status_code == 200
    [error] = reply.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert reply.json()["data"] == {"imageErrors": None}


@pytest.mark.parametrize("ascending", [False, True])
def test_a_cursor_at_null_reads_on_past_the_nulls(api_client: AnimlApiClient,
                                                  ascending: bool) -> None:
    # Nothing is stored as null (a field without a value is missing), so past a null cursor
    # come the errors with a path (ascending) or those without one (descending: missing last).
    batch_id = errors_with_and_without_a_path(api_client)
    page = image_errors_page(api_client, batch_id, paginatedField="path",
                             sortAscending=ascending, next=cursor([None, "zzz"]))
    assert [bool(e["path"]) for e in page["errors"]] == [ascending] * 3


def test_a_null_paginated_field_gives_the_first_page_again(api_client: AnimlApiClient) -> None:
    # As the service's pager does: the sort is on a field named "null" (no error has one), and
    # the cursor holds the whole document (object-path's get of a null path), which every
    # error lacking the field lies past.
    batch_id = errors_with_and_without_a_path(api_client)
    first = image_errors_page(api_client, batch_id, paginatedField=None, limit=2)
    again = image_errors_page(api_client, batch_id, paginatedField=None, limit=2,
                              next=first["pageInfo"]["next"])
    assert again["errors"] == first["errors"] and again["pageInfo"]["hasPrevious"] is True
