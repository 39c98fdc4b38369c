"""The stand-in's HTTP server: POST a GraphQL document with `x-api-key`, get JSON back."""

from __future__ import annotations

import argparse
import contextlib
import functools
import hmac
import json
import logging
import os
import random
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

from graphql import (
    DocumentNode,
    GraphQLError,
    StringValueNode,
    ValueNode,
    build_schema,
    execute_sync,
    get_operation_ast,
    get_variable_values,
    parse,
    validate,
    value_from_ast_untyped,
)

from animl_local.standin_api import paging
from animl_local.standin_api.store import ApiError, Store
from functions.platform.settings import Settings

logger = logging.getLogger(__name__)

SCHEMA = build_schema((Path(__file__).parent / "schema.graphql").read_text())
MAX_BODY_BYTES = 10 * 1024 * 1024


class Resolvers:
    """Root values for graphql-core: one method per query or mutation field."""

    def __init__(self, store: Store, aws: StandinAws | None) -> None:
        self.store = store
        self.aws = aws

    def image(self, info: Any, input: dict[str, Any]) -> Any:
        return self.store.image_or_not_found(input["imageId"])

    def imageErrors(self, info: Any, input: dict[str, Any]) -> Any:
        # The service counts the batch's errors, then pages them (`paging`).
        errors = self.store.image_errors(input["filters"]["batch"])
        found = paging.page(errors, input, dates=frozenset({"created"}))
        return {"pageInfo": {"previous": found.previous, "hasPrevious": found.has_previous,
                             "next": found.next, "hasNext": found.has_next,
                             "count": len(errors)},
                "errors": found.results}

    def createUpload(self, info: Any, input: dict[str, Any]) -> Any:
        batch = self.store.create_batch(input["originalFile"])
        reply = {"batch": batch["_id"], "user": batch["user"]}
        if self.aws:
            reply.update(self.aws.create_upload(batch["_id"], input.get("partCount")))
        return reply

    def closeUpload(self, info: Any, input: dict[str, Any]) -> Any:
        if self.aws:
            self.aws.close_upload(input["batchId"], input["multipartUploadId"], input["parts"])
        return {"isOk": True}

    def createImage(self, info: Any, input: dict[str, Any]) -> Any:
        on_saved = self.aws.image_saved if self.aws else None
        return {"imageAttempt": self.store.create_image(input["md"], on_saved)}

    def createInternalLabels(self, info: Any, input: dict[str, Any]) -> Any:
        return self.store.create_internal_labels(input["imageId"], input["labels"])

    def updateBatch(self, info: Any, input: dict[str, Any]) -> Any:
        return {"batch": self.store.update_batch(input)}

    def stopBatch(self, info: Any, input: dict[str, Any]) -> Any:
        batch = self.store.stop_batch(input["batch"])
        if self.aws:
            self.aws.invoke_ingest_delete(batch["_id"])
        return {"isOk": True}

    def redriveBatch(self, info: Any, input: dict[str, Any]) -> Any:
        batch = self.store.batch_for_redrive(input.get("batch") or "")
        if self.aws:
            self.aws.redrive_inference(batch["_id"])
        return {"isOk": True}

    def createBatchError(self, info: Any, input: dict[str, Any]) -> Any:
        return self.store.create_batch_error(input["batch"], input["error"])

    def createImageError(self, info: Any, input: dict[str, Any]) -> Any:
        return self.store.create_image_error(input["image"], input["batch"], input["error"])


def _date_value(value: Any) -> str:
    # The service's Date takes ISO strings only (it parses them with luxon's fromISO).
    if not isinstance(value, str):
        raise TypeError(f"Expected string, got {type(value).__name__}")
    return value


def _date_literal(node: ValueNode, *_: Any) -> str:
    if not isinstance(node, StringValueNode):
        raise TypeError(f"Expected string, got {node.kind}")
    return node.value


def _json_object_value(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"JSONObject cannot represent non-object value: {value!r}"[:200])
    return value


def _json_object_literal(node: ValueNode, *_: Any) -> dict[str, Any]:
    return _json_object_value(value_from_ast_untyped(node))


# The scalars coerce their input as the service's do (graphql-core 3.3's coercion hooks).
for _name, _value, _literal in (("Date", _date_value, _date_literal),
                                ("JSONObject", _json_object_value, _json_object_literal)):
    _scalar = SCHEMA.type_map[_name]
    _scalar.coerce_input_value = _value  # type: ignore[attr-defined]
    _scalar.coerce_input_literal = _literal  # type: ignore[attr-defined]


def execute(resolvers: Resolvers, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(HTTP status, reply) as Apollo Server 4 answers: a document that does not parse or
    validate, or variables that do not coerce, get HTTP 400; errors thrown while running the
    operation get HTTP 200 with `errors`."""
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        return 400, _errors("GraphQL operations must contain a non-empty `query`.",
                            "BAD_REQUEST")
    try:
        document, invalid = checked_document(query)
    except GraphQLError as error:
        return 400, _errors(error.message, "GRAPHQL_PARSE_FAILED")
    if invalid:
        return 400, {"errors": [{**e.formatted, "extensions": {
            "code": "GRAPHQL_VALIDATION_FAILED"}} for e in invalid]}
    variables = body.get("variables") or {}
    operation = get_operation_ast(document, body.get("operationName"))
    if operation is None:
        return 400, _errors("Could not determine which operation to run.", "BAD_REQUEST")
    coerced = get_variable_values(SCHEMA, operation.variable_definitions or [], variables)
    if isinstance(coerced, list):
        return 400, {"errors": [{**e.formatted, "extensions": {"code": "BAD_USER_INPUT"}}
                                for e in coerced]}
    result = execute_sync(SCHEMA, document, root_value=resolvers, variable_values=variables,
                          operation_name=body.get("operationName"))
    reply: dict[str, Any] = {"data": result.data}
    if result.errors:
        reply["errors"] = [_error_json(e) for e in result.errors]
    return 200, reply


@functools.lru_cache(maxsize=256)
def checked_document(query: str) -> tuple[DocumentNode, tuple[GraphQLError, ...]]:
    """The document and its validation errors against the schema (none: valid); a document that
    does not parse raises. Kept per document text: clients send the same few documents again
    and again, and parsing and validating each took more of the stand-in's time than running
    it. A refused document is kept with its errors, so it is refused every time it is sent."""
    document = parse(query)
    return document, tuple(validate(SCHEMA, document))


def _errors(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}


def _error_json(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if original is not None and not isinstance(original, ApiError):
        logger.exception("resolver failed", exc_info=original)
    formatted: dict[str, Any] = dict(error.formatted)
    formatted.setdefault("extensions", {"code": "INTERNAL_SERVER_ERROR"})
    return formatted


@dataclass
class StandinAws:
    """What the service itself does on AWS, for the parts ingest meets: the automation rule
    that sends one inference request per saved batch image to the batch's queue (whose URL
    it computes from the name), stopBatch's asynchronous invoke of `IngestDelete-<stage>`,
    redriveBatch's move of dead-lettered inference messages, and createUpload/closeUpload's
    presigned uploads of `<batch>.zip` to the ingestion bucket."""

    stage: str
    region: str
    account: str
    ml_model_id: str = "megadetector_v5a"
    _invocations: list[threading.Thread] = field(default_factory=list, repr=False)
    _clients: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # moto's SQS receives are not safe against each other: one iterates the queue's in-flight
    # set while another changes it ("Set changed size during iteration"). The service's moves
    # out of a DLQ are made one at a time here. (Its sends only append, and a mapped queue's
    # pollers receive under the queue's own lock: animl_local.moto_sqs_pollers.)
    _sqs_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def settings(self) -> Settings:
        return Settings(stage=self.stage, region=self.region)

    def client(self, name: str) -> Any:
        """One client per service and endpoint (in-process moto, or a moto server), built once:
        building clients is slow and not thread-safe; a built client is thread-safe."""
        key = (name, os.environ.get("AWS_ENDPOINT_URL"))
        with self._clients_lock:
            if key not in self._clients:
                import boto3

                session: Any = boto3.session.Session()  # any service, by name
                self._clients[key] = session.client(name, region_name=self.region)
            return self._clients[key]

    def queue_url(self, batch_id: str) -> str:
        return (f"https://sqs.{self.region}.amazonaws.com/{self.account}/"
                f"{self.settings.inference_queue_name(batch_id)}")

    def image_saved(self, image: dict[str, Any]) -> None:
        """Enqueue the inference request; raises (as the service does) when it cannot."""
        if not image.get("batchId"):
            return  # wireless images go to the stage's own inference queue, not modelled here
        message = {"mlModelId": self.ml_model_id, "event": "image-added",
                   "image": {k: image.get(k) for k in ("_id", "batchId", "bucket", "path")},
                   "projectId": image["projectId"], "automationRuleId": "standin-rule"}
        self.client("sqs").send_message(QueueUrl=self.queue_url(image["batchId"]),
                                        MessageBody=json.dumps(message))

    def invoke_ingest_delete(self, batch_id: str) -> None:
        """InvocationType Event, on a thread of its own: moto runs even an Event invoke before
        it answers, and the service does not wait for it either."""
        def invoke() -> None:
            try:
                self.client("lambda").invoke(
                    FunctionName=self.settings.ingest_delete_function_name,
                    InvocationType="Event", Payload=json.dumps({"batch": batch_id}).encode())
            except Exception as exc:  # an Event invoke's failure is not the caller's
                logger.warning("IngestDelete for %s failed: %s", batch_id, exc)

        thread = threading.Thread(target=invoke, name=f"ingest-delete-{batch_id}", daemon=True)
        self._invocations.append(thread)
        thread.start()

    def wait_for_invocations(self, timeout: float = 60) -> None:
        for thread in self._invocations:
            thread.join(timeout)

    def redrive_inference(self, batch_id: str) -> None:
        """StartMessageMoveTask from the batch's DLQ to its queue (moto lacks it: moved here
        message by message)."""
        sqs = self.client("sqs")
        dlq = sqs.get_queue_url(QueueName=self.settings.inference_dlq_name(batch_id))["QueueUrl"]
        with self._sqs_lock:
            self._move_messages(sqs, dlq, self.queue_url(batch_id))

    @staticmethod
    def _move_messages(sqs: Any, source: str, target: str) -> None:
        while True:
            received = sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10).get(
                "Messages")
            if not received:
                return
            for message in received:
                sqs.send_message(QueueUrl=target, MessageBody=message["Body"])
                sqs.delete_message(QueueUrl=source, ReceiptHandle=message["ReceiptHandle"])

    def create_upload(self, batch_id: str, part_count: int | None) -> dict[str, Any]:
        s3 = self.client("s3")
        params = {"Bucket": self.settings.ingestion_bucket, "Key": f"{batch_id}.zip"}
        if not part_count:
            return {"url": s3.generate_presigned_url(
                "put_object", Params={**params, "ContentType": "application/zip"},
                ExpiresIn=86400)}
        upload_id = s3.create_multipart_upload(**params, ContentType="application/zip")["UploadId"]
        urls = [s3.generate_presigned_url("upload_part", ExpiresIn=86400, Params={
            **params, "UploadId": upload_id, "PartNumber": number})
            for number in range(1, part_count + 1)]
        return {"multipartUploadId": upload_id, "urls": urls}

    def close_upload(self, batch_id: str, upload_id: str, parts: list[dict[str, Any]]) -> None:
        self.client("s3").complete_multipart_upload(
            Bucket=self.settings.ingestion_bucket, Key=f"{batch_id}.zip", UploadId=upload_id,
            MultipartUpload={"Parts": parts})


@dataclass(frozen=True)
class Fault:
    """Answer calls of `operation` (whose variables contain `body_contains`) with `status`.

    `commit`: run the operation first, then fail (the service did it; its answer was lost).
    """

    operation: str
    status: int = 503
    body_contains: str | None = None
    delay_seconds: float = 0.0  # answer this late (past the client's timeout: a timeout)
    commit: bool = False
    retry_after: int | None = None  # a Retry-After header, in seconds

    @property
    def kind(self) -> str:
        return ("commit-then-" if self.commit else "") + (
            "timeout" if self.delay_seconds else str(self.status))


# What ingest sends (createInternalLabels is the service's own worker, not ingest).
INGEST_OPERATIONS = ("createImage", "createImageError", "createBatchError", "updateBatch",
                     "image", "imageErrors")
STOP_POLL_SECONDS = 0.05
# How long a stop waits for the requests being served (each answers within its client's
# timeout; a held fault answers after its own delay, outside this wait).
STOP_DRAIN_SECONDS = 30

FAULT_KINDS = ("503", "429", "500", "timeout", "commit-then-503", "commit-then-timeout")


@dataclass
class RandomFaults:
    """Each request for one of `operations` fails with probability `rate`, its kind drawn
    from `kinds`; seeded, so a run's faults can be replayed. A timeout holds the answer for
    `hold_seconds` (set it past the client's timeout). `injected` counts what was done, by
    operation and kind."""

    rate: float
    seed: int = 0
    kinds: tuple[str, ...] = FAULT_KINDS
    operations: tuple[str, ...] = INGEST_OPERATIONS
    hold_seconds: float = 3.0
    retry_after_seconds: int = 1
    limit: int | None = None  # at most this many faults in all
    injected: Counter[tuple[str, str]] = field(default_factory=Counter)
    _random: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not 0 <= self.rate <= 1:
            raise ValueError(f"fault kinds {sorted(unknown)} or rate {self.rate} not allowed")
        self._random = random.Random(self.seed)

    def draw(self, operation: str | None) -> Fault | None:
        if operation not in self.operations:
            return None
        with self._lock:
            if self._random.random() >= self.rate or (
                    self.limit is not None and self.count() >= self.limit):
                return None
            kind = self._random.choice(self.kinds)
            self.injected[(operation, kind)] += 1
        return self.fault(operation, kind)

    def fault(self, operation: str, kind: str) -> Fault:
        commit = kind.startswith("commit-then-")
        what = kind.removeprefix("commit-then-")
        if what == "timeout":
            return Fault(operation, 503, delay_seconds=self.hold_seconds, commit=commit)
        status = int(what)
        return Fault(operation, status, commit=commit,
                     retry_after=self.retry_after_seconds if status == 429 else None)

    def count(self, commit: bool | None = None, operation: str | None = None) -> int:
        """Faults injected so far (only those that committed, or did not, when asked)."""
        return sum(n for (op, kind), n in self.injected.items()
                   if (operation is None or op == operation)
                   and (commit is None or kind.startswith("commit-then-") == commit))


_FIRST_FIELD = re.compile(r"\{\s*([_A-Za-z][_0-9A-Za-z]*)")


def _first_field(query: str) -> str | None:
    """The operation's first root field (`createImage` of `mutation M(...) { createImage(...`);
    enough for the stand-in's own fault injection, which never meets fragments."""
    match = _FIRST_FIELD.search(query)
    return match.group(1) if match else None


class _DeepBacklogServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5; a batch's ~40 concurrent clients (8 entries x
    # 4 groups, the inference consumer) overflow it, and a refused SYN waits 1 s to retry.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]
                 ) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every connection still open (kept alive between requests): their handler
        threads read the end of the stream and end."""
        with self._open_lock:
            still_open = list(self._open)
        for connection in still_open:
            with contextlib.suppress(OSError):  # closed meanwhile
                connection.shutdown(socket.SHUT_RDWR)


class StandinApi:
    """The stand-in API on 127.0.0.1; port 0 picks a free port."""

    def __init__(self, db_path: Path | str, api_key: str, port: int = 0,
                 host: str = "127.0.0.1", aws: StandinAws | None = None,
                 record_requests: bool = False) -> None:
        self.store = Store(db_path)
        self.aws = aws
        self._api_key = api_key
        self._server = _DeepBacklogServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        # Test control: requests that match a fault get its HTTP status instead of an answer;
        # with `random_faults`, any request of theirs may fail.
        self.faults: list[Fault] = []
        self.random_faults: RandomFaults | None = None
        # Test and benchmark control: answer every request this late (a real network's round
        # trip), and the most requests ever in flight at once.
        self.latency_seconds = 0.0
        self.most_in_flight = 0
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        self._drained = threading.Condition(self._in_flight_lock)
        self._stopping = False
        # Every request body and the status it got, when asked (the contract tests read them).
        self.received: list[tuple[dict[str, Any], int]] | None = [] if record_requests else None

    @property
    def url(self) -> str:
        host, port = cast(tuple[str, int], self._server.server_address[:2])
        return f"http://{host}:{port}/internal/graphql"

    def start(self) -> StandinApi:
        # Checked for a stop every 50 ms, not socketserver's 500: each run and test stops one.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": STOP_POLL_SECONDS},
                                        daemon=True, name="standin-api")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering, let the requests being served finish, then close the store: a
        request on a connection kept alive is not served once the stop has begun (as one
        arriving after it would be refused), so none meets a closed database."""
        if self.aws:
            self.aws.wait_for_invocations()
        with self._in_flight_lock:
            self._stopping = True
        self._server.shutdown()
        with self._drained:
            if not self._drained.wait_for(lambda: self._in_flight == 0, STOP_DRAIN_SECONDS):
                logger.warning("standin-api: %d request(s) still in flight at its stop",
                               self._in_flight)
        self._server.close_connections()  # answered: the idle ones' threads end
        self._server.server_close()
        self.store.close()

    def __enter__(self) -> StandinApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @contextmanager
    def in_flight(self) -> Iterator[bool]:
        """A request being served, counted; False (and not counted) once the stop began."""
        with self._in_flight_lock:
            serving = not self._stopping
            if serving:
                self._in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            yield serving
        finally:
            if serving:
                with self._in_flight_lock:
                    self._in_flight -= 1
                    self._drained.notify_all()

    def fault_for(self, body: dict[str, Any]) -> Fault | None:
        """The first fault a request matches, if any, else a random one, if drawn."""
        query = str(body.get("query") or "")
        for fault in list(self.faults):
            calls = re.search(rf"\b{re.escape(fault.operation)}\s*\(", query)
            if calls and (fault.body_contains is None
                          or fault.body_contains in json.dumps(body.get("variables"))):
                return fault
        random_faults = self.random_faults
        if random_faults is None:
            return None
        return random_faults.draw(_first_field(query))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self
        resolvers = Resolvers(self.store, self.aws)

        class Handler(BaseHTTPRequestHandler):
            # Keep-alive, as the real service's load balancer: each client's pooled session
            # reuses its connection (and its handler thread) instead of opening one a request.
            # Answers go out at once: headers and body are two writes, and with Nagle's
            # algorithm the second waited for the client's delayed ACK (some 40 ms).
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True
            body_read = False

            def do_POST(self) -> None:
                self.body_read = False
                if not _key_matches(self.headers.get("x-api-key"), api._api_key):
                    self._reply(401, {"errors": [{"message": "Authentication error: no valid "
                                                  "x-api-key or bearer token"}]})
                    return
                length = _content_length(self.headers.get("content-length"))
                if length is None:
                    self._reply(400, _errors("Bad content-length", "BAD_REQUEST"))
                    return
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"errors": [{"message": "Request body too large"}]})
                    return
                content_type = self.headers.get("content-type", "").split(";")[0].strip()
                if content_type != "application/json":
                    # Apollo's CSRF prevention refuses "simple" requests without a preflight.
                    self._reply(400, _errors("This operation has been blocked as a potential "
                                             "Cross-Site Request Forgery (CSRF).", "BAD_REQUEST"))
                    return
                try:
                    data = self.rfile.read(length)
                    self.body_read = True
                    body = json.loads(data or b"{}")
                except ValueError:
                    self._reply(400, _errors("Body is not JSON", "BAD_REQUEST"))
                    return
                if not isinstance(body, dict):
                    self._reply(400, _errors("Body is not a JSON object", "BAD_REQUEST"))
                    return
                fault = api.fault_for(body)
                if fault and not fault.commit:
                    self._fail(fault)
                    return
                with api.in_flight() as serving:
                    if not serving:  # stopping: no answer, as a refused connection gives none
                        self.close_connection = True
                        return
                    time.sleep(api.latency_seconds)
                    status, reply = execute(resolvers, body)
                if api.received is not None:
                    api.received.append((body, status))
                if fault:  # done, and the answer is lost
                    self._fail(fault)
                    return
                self._reply(status, reply)

            def _fail(self, fault: Fault) -> None:
                time.sleep(fault.delay_seconds)
                headers = {} if fault.retry_after is None else {
                    "retry-after": str(fault.retry_after)}
                self._reply(fault.status,
                            {"errors": [{"message": "Service unavailable (injected)"}]}, headers)

            def _reply(self, status: int, body: dict[str, Any],
                       headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    if not self.body_read:
                        # A body left unread would be taken for the next request: close.
                        self.send_header("connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    # The caller gave up first (a held answer, past its timeout).
                    logger.debug("standin-api: the caller left before its answer")

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug("standin-api: " + format, *args)

        return Handler


def _key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of any header value, non-ASCII included (`compare_digest`
    refuses non-ASCII strings with a TypeError, so bytes are compared)."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"),
                               expected.encode("utf-8", "surrogateescape"))


def _content_length(value: str | None) -> int | None:
    """The body's length; None for a value that is not a non-negative integer."""
    text = (value or "0").strip()
    return int(text) if text.isdigit() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the stand-in Animl API on its own.")
    parser.add_argument("--db", default="animl-standin.sqlite3", help="SQLite file")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key-env", default="ANIML_API_KEY",
                        help="environment variable holding the API key")
    args = parser.parse_args(argv)
    key = os.environ.get(args.api_key_env)
    if not key:
        parser.error(f"set {args.api_key_env} to the API key clients must send")
    server = StandinApi(args.db, key, port=args.port)
    print(f"stand-in Animl API at {server.url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
