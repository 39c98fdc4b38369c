"""The one GraphQL client: errors are typed, the key travels only in its header."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import pytest

from animl_local.standin_api import StandinApi
from functions.platform.graphql_client import (
    API_CONNECTIONS,
    GET_IMAGE,
    IMAGE_ERRORS_PAGE,
    MIN_ATTEMPT_SECONDS,
    AnimlApiClient,
    AnimlApiError,
    AnimlApiRefused,
    AnimlApiRejected,
    AnimlApiUnavailable,
    RetryPolicy,
    parse_retry_after,
)
from functions.platform.settings import Settings
from tests.conftest import create_batch

SECRET = "very-secret-key-123"
A_QUERY = GET_IMAGE  # any real document; these servers answer without reading it
IMAGE = {"input": {"imageId": "p:h"}}


def serve_once(status: int, body: bytes, delay: float = 0.0) -> str:
    """A tiny server answering every POST with `status` and `body` (after `delay` seconds)."""
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            threading.Event().wait(delay)
            self.send_response(status)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_sleep(seconds: float) -> None:
    """The retries' backoff, skipped: tests that retry by the default policy need not wait."""


ONE_ATTEMPT = RetryPolicy(attempts=1, base_seconds=0.0, cap_seconds=0.0, margin_seconds=0.0)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_unavailable(status: int) -> None:
    client = AnimlApiClient(serve_once(status, b"oops"), SECRET, retry=ONE_ATTEMPT)
    with pytest.raises(AnimlApiUnavailable):
        client.execute(A_QUERY, IMAGE)


def test_a_timeout_is_unavailable() -> None:
    client = AnimlApiClient(serve_once(200, b"{}", delay=2), SECRET, timeout=0.2,
                            retry=ONE_ATTEMPT)
    with pytest.raises(AnimlApiUnavailable):
        client.execute(A_QUERY, IMAGE)


def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(AnimlApiUnavailable):
        AnimlApiClient(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=2,
                       retry=ONE_ATTEMPT).execute("{ x }")


# Retries: a real HTTP server answers a script, one answer per request, the last one repeated.

OK_BODY = b'{"data": {"image": {"_id": "p:h"}}}'


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = OK_BODY
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang_up: bool = False  # close the connection without a reply


@dataclass
class ScriptedServer:
    url: str
    requests: list[float] = field(default_factory=list)  # when each arrived (monotonic)


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*script: Answer) -> ScriptedServer:
        answers = list(script)
        record = ScriptedServer("")
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with lock:
                    record.requests.append(time.monotonic())
                    answer = answers.pop(0) if len(answers) > 1 else answers[0]
                if answer.hang_up:
                    self.close_connection = True
                    return
                threading.Event().wait(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        servers.append(server)
        # Polled for shutdown every 0.05 s, not 0.5 s: the fixture stops every server it made.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        record.url = f"http://127.0.0.1:{server.server_address[1]}/"
        return record

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


class FakeClock:
    """The invocation's clock: `sleep` moves it on, `remaining` counts down to its end."""

    def __init__(self, remaining: float) -> None:
        self.end = remaining
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def remaining(self) -> float:
        return self.end - self.now


POLICY = RetryPolicy(attempts=5, base_seconds=0.5, cap_seconds=4.0, margin_seconds=2.0)


def retrying_client(url: str, clock: FakeClock, policy: RetryPolicy = POLICY,
                    timeout: float = 5.0, draw: float = 0.999) -> AnimlApiClient:
    return AnimlApiClient(url, SECRET, timeout=timeout, retry=policy, sleep=clock.sleep,
                          draw=lambda: draw).within(clock.remaining)


def test_transient_failures_are_retried_until_the_service_answers(scripted) -> None:
    server = scripted(Answer(503), Answer(500), Answer(502), Answer(200))
    clock = FakeClock(remaining=600)
    data = retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert data == {"image": {"_id": "p:h"}}
    assert len(server.requests) == 4
    # Full jitter: a draw in [0, 1) times min(cap, base * 2^n).
    assert clock.slept == pytest.approx([0.4995, 0.999, 1.998])


@pytest.mark.slow  # waits out a 2 s timeout
def test_a_lost_connection_and_a_timeout_are_retried(scripted) -> None:
    server = scripted(Answer(hang_up=True), Answer(delay=6), Answer(200))
    clock = FakeClock(remaining=600)
    client = retrying_client(server.url, clock, timeout=2)
    assert client.execute(A_QUERY, IMAGE) == {"image": {"_id": "p:h"}}
    assert len(server.requests) == 3


@pytest.mark.parametrize("lost", [Answer(503), Answer(500),
                                  pytest.param(Answer(delay=6), marks=pytest.mark.slow),
                                  Answer(hang_up=True)])
def test_after_a_lost_answer_done_already_is_asked_and_its_answer_taken(scripted, lost) -> None:
    """A failure the service may have acted on: the mutation is not sent again once done."""
    server = scripted(lost, Answer(200))
    asked: list[int] = []

    def done_already() -> dict:
        asked.append(len(server.requests))
        return {"image": {"_id": "found"}}

    client = retrying_client(server.url, FakeClock(remaining=600), timeout=2)
    assert client.execute(A_QUERY, IMAGE, done_already) == {"image": {"_id": "found"}}
    assert asked == [1] and len(server.requests) == 1


def test_when_it_was_not_done_the_call_is_sent_again(scripted) -> None:
    server = scripted(Answer(503), Answer(200))
    client = retrying_client(server.url, FakeClock(remaining=600))
    assert client.execute(A_QUERY, IMAGE, lambda: None) == {"image": {"_id": "p:h"}}
    assert len(server.requests) == 2


def test_a_throttled_or_unconnected_call_was_never_done_so_nothing_is_asked(scripted) -> None:
    server = scripted(Answer(429, b"", {"Retry-After": "1"}), Answer(200))

    def done_already() -> dict:
        raise AssertionError("a 429 never ran the operation")

    client = retrying_client(server.url, FakeClock(remaining=600))
    assert client.execute(A_QUERY, IMAGE, done_already) == {"image": {"_id": "p:h"}}
    assert len(server.requests) == 2


def test_a_429_waits_as_long_as_retry_after_says(scripted) -> None:
    server = scripted(Answer(429, b"slow down", {"Retry-After": "3"}), Answer(200))
    clock = FakeClock(remaining=600)
    assert retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert clock.slept == [3.0]


def test_a_retry_after_longer_than_the_cap_is_left_to_the_state_machine(scripted) -> None:
    server = scripted(Answer(429, b"", {"Retry-After": "3600"}), Answer(200))
    clock = FakeClock(remaining=7200)
    with pytest.raises(AnimlApiUnavailable, match="HTTP 429"):
        retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert len(server.requests) == 1 and clock.slept == []


def test_attempts_are_bounded_and_the_last_failure_is_raised(scripted) -> None:
    server = scripted(Answer(503))
    clock = FakeClock(remaining=600)
    with pytest.raises(AnimlApiUnavailable, match="HTTP 503"):
        retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert len(server.requests) == POLICY.attempts
    assert clock.slept == pytest.approx([0.4995, 0.999, 1.998, 3.996])  # the cap: 4 s


def test_retries_never_sleep_past_the_invocations_end(scripted) -> None:
    server = scripted(Answer(503))
    clock = FakeClock(remaining=5.0)  # 3 s usable: the margin is 2 s
    with pytest.raises(AnimlApiUnavailable, match="HTTP 503"):
        retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    # 0.4995 + 0.999 slept (1.5 s used); 1.998 more and an attempt would not fit in 1.5 s.
    assert clock.slept == pytest.approx([0.4995, 0.999])
    assert len(server.requests) == 3
    assert sum(clock.slept) + MIN_ATTEMPT_SECONDS <= clock.end - POLICY.margin_seconds


def test_without_time_left_one_attempt_is_made_and_not_repeated(scripted) -> None:
    # As before retries existed: the call is made (Lambda ends the invocation if it must).
    server = scripted(Answer(503), Answer(200))
    clock = FakeClock(remaining=POLICY.margin_seconds / 2)
    with pytest.raises(AnimlApiUnavailable, match="HTTP 503"):
        retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert len(server.requests) == 1 and clock.slept == []
    assert retrying_client(server.url, clock).execute(A_QUERY, IMAGE)


@pytest.mark.slow  # waits out the 1.5 s left
def test_an_attempt_waits_no_longer_than_the_time_left(scripted) -> None:
    server = scripted(Answer(delay=60))
    clock = FakeClock(remaining=POLICY.margin_seconds + 1.5)
    started = time.monotonic()
    with pytest.raises(AnimlApiUnavailable, match="unreachable"):
        retrying_client(server.url, clock, timeout=30).execute(A_QUERY, IMAGE)
    assert time.monotonic() - started < 20  # 1.5 s, not the client's 30 s timeout


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refusal_is_never_retried(scripted, status: int) -> None:
    server = scripted(Answer(status, b'{"errors": [{"message": "no"}]}'))
    clock = FakeClock(remaining=600)
    with pytest.raises(AnimlApiRefused):
        retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert len(server.requests) == 1 and clock.slept == []


def test_a_thrown_error_is_never_retried(scripted) -> None:
    server = scripted(Answer(200, b'{"data": null, "errors": [{"message": "nope"}]}'))
    clock = FakeClock(remaining=600)
    with pytest.raises(AnimlApiRejected):
        retrying_client(server.url, clock).execute(A_QUERY, IMAGE)
    assert len(server.requests) == 1


def test_without_a_deadline_only_the_attempts_bound_the_retries(scripted) -> None:
    server = scripted(Answer(503), Answer(200))
    slept: list[float] = []
    client = AnimlApiClient(server.url, SECRET, retry=POLICY, sleep=slept.append,
                            draw=lambda: 0.5)
    assert client.execute(A_QUERY, IMAGE) and slept == [0.25]


@pytest.mark.parametrize(("header", "seconds"), [
    ("7", 7.0), (" 120 ", 120.0), ("Sat, 28 Nov 2026 12:00:30 GMT", 30.0),
    ("Sat, 28 Nov 2026 11:00:00 GMT", 0.0), (None, None), ("", None), ("soon", None),
    ("1.5", None), ("-3", None)])
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None,
                                                         seconds: float | None) -> None:
    noon = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=lambda: noon) == seconds


def test_graphql_errors_with_http_200_are_rejected() -> None:
    client = AnimlApiClient(serve_once(200, b'{"data": null, "errors": [{"message": "nope"}]}'),
                            SECRET)
    with pytest.raises(AnimlApiRejected, match="nope"):
        client.execute(A_QUERY, IMAGE)


def test_a_body_that_is_not_json_is_unavailable() -> None:
    with pytest.raises(AnimlApiUnavailable):
        AnimlApiClient(serve_once(200, b"<html>"), SECRET, sleep=no_sleep).execute("{ x }")


def test_the_key_is_sent_and_never_shown(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with StandinApi(tmp_path / "db", SECRET) as api:
        client = AnimlApiClient(api.url, SECRET)
        assert client.get_image("p:h") is None
        wrong = AnimlApiClient(api.url, "not-the-key")
        with pytest.raises(AnimlApiRefused) as rejected:
            wrong.get_image("p:h")
    failures = [str(rejected.value), repr(client), repr(wrong)]
    with pytest.raises(AnimlApiUnavailable) as refused:
        AnimlApiClient(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=2,
                       sleep=no_sleep).execute("{ x }")
    failures.append(str(refused.value))
    for text in [*failures, caplog.text]:
        assert SECRET not in text and "not-the-key" not in text


def test_a_document_the_schema_refuses_is_a_defect_naming_the_operation(tmp_path) -> None:
    # Apollo answers HTTP 400; that is a bug in ingest, not a reason to retry.
    with StandinApi(tmp_path / "db", SECRET) as api:
        client = AnimlApiClient(api.url, SECRET)
        with pytest.raises(AnimlApiRefused, match="HTTP 400 for Batch .*'batch'") as refused:
            client.execute("query Batch($id: String!) { batch(_id: $id) { _id } }", {"id": "b"})
    assert refused.value.status == 400
    assert not isinstance(refused.value, AnimlApiUnavailable)


def test_variables_the_schema_refuses_are_a_defect_too(tmp_path) -> None:
    with StandinApi(tmp_path / "db", SECRET) as api:
        with pytest.raises(AnimlApiRefused, match="HTTP 400 for UpdateBatch"):
            AnimlApiClient(api.url, SECRET).update_batch("b", uploadComplete=12345)


def test_an_image_that_does_not_exist_is_none_other_errors_raise() -> None:
    not_found = b'{"data": {"image": null}, "errors": [{"message": "Image not found", ' \
                b'"extensions": {"code": "NOT_FOUND"}}]}'
    assert AnimlApiClient(serve_once(200, not_found), SECRET).get_image("p:h") is None
    broken = b'{"data": {"image": null}, "errors": [{"message": "db down", ' \
             b'"extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}'
    with pytest.raises(AnimlApiRejected, match="db down"):
        AnimlApiClient(serve_once(200, broken), SECRET).get_image("p:h")


# A batch's ImageErrors: read page by page, as the service pages them.

def image_error_requests(standin_api: StandinApi) -> list[dict]:
    return [body["variables"]["input"] for body, _ in standin_api.received or []
            if "imageErrors(" in body["query"]]


def test_image_errors_are_read_page_by_page_until_there_is_no_next(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client)
    recorded = {standin_api.store.create_image_error(f"cam/{n}.JPG", batch_id, "bad")["_id"]
                for n in range(IMAGE_ERRORS_PAGE * 2 + 50)}
    standin_api.store.create_image_error("cam/x.JPG", "batch-other", "bad")

    read = [error["_id"] for error in api_client.image_errors(batch_id)]

    assert sorted(read) == sorted(recorded)  # each of the batch's, once
    pages = image_error_requests(standin_api)
    assert [page["limit"] for page in pages] == [IMAGE_ERRORS_PAGE] * 3
    # The first page is asked without a cursor, each later one with the page before's `next`.
    assert "next" not in pages[0] and pages[1]["next"] != pages[2]["next"]


def test_an_image_error_is_looked_for_no_further_than_where_it_is(
        standin_api: StandinApi, api_client: AnimlApiClient) -> None:
    batch_id = create_batch(api_client)
    for number in range(IMAGE_ERRORS_PAGE + 10):
        standin_api.store.create_image_error(f"cam/{number}.JPG", batch_id, "bad")
    newest = standin_api.store.create_image_error("cam/new.JPG", batch_id, "EMPTY_FILE")

    assert api_client.find_image_error("cam/new.JPG", batch_id, "EMPTY_FILE") == {
        key: newest[key] for key in ("_id", "image", "batch", "error", "created")}
    assert len(image_error_requests(standin_api)) == 1  # newest first: the first page
    # The same image with another error, or another batch's, is not it: every page is read.
    assert api_client.find_image_error("cam/new.JPG", batch_id, "CORRUPTED_IMAGE_FILE") is None
    assert api_client.find_image_error("cam/new.JPG", "batch-other", "EMPTY_FILE") is None
    assert len(image_error_requests(standin_api)) == 1 + 2 + 1


def connection(next_cursor: str | None, has_next: bool) -> bytes:
    return json.dumps({"data": {"imageErrors": {
        "pageInfo": {"next": next_cursor, "hasNext": has_next},
        "errors": [{"_id": "e", "image": "other", "batch": "b", "error": "x",
                    "created": "2026-01-01T00:00:00.000Z"}]}}}).encode()


@pytest.mark.parametrize("pages", [
    [connection(None, True)],  # more, but no cursor to ask for it
    [connection("c1", True), connection("c1", True)],  # the same cursor again
])
def test_paging_that_would_never_end_is_an_error(scripted, pages: list[bytes]) -> None:
    server = scripted(*[Answer(body=body) for body in pages])
    client = AnimlApiClient(server.url, SECRET, retry=ONE_ATTEMPT)
    with pytest.raises(AnimlApiError, match="hasNext but no new cursor"):
        client.find_image_error("mine", "b", "x")
    assert len(server.requests) == len(pages)


def test_a_groups_worth_of_concurrent_calls_reuses_its_connections(
        standin_api: StandinApi, api_client: AnimlApiClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3.connectionpool

    opened, lock = [0], threading.Lock()
    new_conn = urllib3.connectionpool.HTTPConnectionPool._new_conn

    def counted(pool: urllib3.connectionpool.HTTPConnectionPool) -> object:
        with lock:
            opened[0] += 1
        return new_conn(pool)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "_new_conn", counted)
    standin_api.latency_seconds = 0.2  # every call of a wave is in flight at once
    threads = Settings(stage="test").group_concurrency
    for _ in range(2):  # two waves: the second finds the first's connections open
        workers = [threading.Thread(target=create_batch, args=(api_client,))
                   for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    assert threads <= API_CONNECTIONS
    # requests' own pool keeps 10: 6 more were opened for the second wave, and closed again.
    assert opened[0] == threads
