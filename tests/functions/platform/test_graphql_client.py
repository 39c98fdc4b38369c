"""The one GraphQL client: errors are typed, the key travels only in its header."""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from animl_local.standin_api import StandinApi
from functions.platform.graphql_client import (
    GET_IMAGE,
    AnimlApiClient,
    AnimlApiRefused,
    AnimlApiRejected,
    AnimlApiUnavailable,
)

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


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_unavailable(status: int) -> None:
    client = AnimlApiClient(serve_once(status, b"oops"), SECRET)
    with pytest.raises(AnimlApiUnavailable):
        client.execute(A_QUERY, IMAGE)


def test_a_timeout_is_unavailable() -> None:
    client = AnimlApiClient(serve_once(200, b"{}", delay=2), SECRET, timeout=0.2)
    with pytest.raises(AnimlApiUnavailable):
        client.execute(A_QUERY, IMAGE)


def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(AnimlApiUnavailable):
        AnimlApiClient(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=2).execute("{ x }")


def test_graphql_errors_with_http_200_are_rejected() -> None:
    client = AnimlApiClient(serve_once(200, b'{"data": null, "errors": [{"message": "nope"}]}'),
                            SECRET)
    with pytest.raises(AnimlApiRejected, match="nope"):
        client.execute(A_QUERY, IMAGE)


def test_a_body_that_is_not_json_is_unavailable() -> None:
    with pytest.raises(AnimlApiUnavailable):
        AnimlApiClient(serve_once(200, b"<html>"), SECRET).execute("{ x }")


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
        AnimlApiClient(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=2).execute("{ x }")
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
