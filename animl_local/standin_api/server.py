"""The stand-in's HTTP server: POST a GraphQL document with `x-api-key`, get JSON back."""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from graphql import GraphQLError, build_schema, graphql_sync

from animl_local.standin_api.store import ApiError, Store

logger = logging.getLogger(__name__)

SCHEMA = build_schema((Path(__file__).parent / "schema.graphql").read_text())
MAX_BODY_BYTES = 10 * 1024 * 1024


class Resolvers:
    """Root values for graphql-core: one method per query or mutation field."""

    def __init__(self, store: Store, automation: InferenceAutomation | None) -> None:
        self.store = store
        self.automation = automation

    def batch(self, info: Any, _id: str) -> Any:
        return self.store.batch(_id)

    def batches(self, info: Any) -> Any:
        return self.store.batches()

    def image(self, info: Any, input: dict[str, Any]) -> Any:
        return self.store.image(input["imageId"])

    def images(self, info: Any, batchId: str | None = None) -> Any:  # noqa: N803
        return self.store.images(batchId)

    def imageErrors(self, info: Any, batch: str | None = None) -> Any:  # noqa: N802
        return self.store.image_errors(batch)

    def createUpload(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        return self.store.create_upload(
            input["originalFile"], input.get("projectId"), input.get("overrideSerial")
        )

    def createImage(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        attempt = self.store.create_image(input["md"])
        if attempt.pop("saved") and attempt.get("batch") and self.automation:
            self.automation.image_saved(self.store.image(attempt["_id"]))
        return {"imageAttempt": attempt}

    def createInternalLabels(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        return self.store.create_internal_labels(input["labels"])

    def updateBatch(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        return {"batch": self.store.update_batch(input)}

    def createBatchError(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        return self.store.create_batch_error(input["batch"], input["error"])

    def createImageError(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        return self.store.create_image_error(input["image"], input["batch"], input["error"])

    def registerCamera(self, info: Any, input: dict[str, Any]) -> Any:  # noqa: N802
        return self.store.register_camera(input["cameraId"], input["projectId"])


def execute(resolvers: Resolvers, body: dict[str, Any]) -> dict[str, Any]:
    result = graphql_sync(
        SCHEMA, body.get("query") or "", root_value=resolvers,
        variable_values=body.get("variables"), operation_name=body.get("operationName"),
    )
    reply: dict[str, Any] = {"data": result.data}
    if result.errors:
        reply["errors"] = [_error_json(e) for e in result.errors]
    return reply


def _error_json(error: GraphQLError) -> dict[str, Any]:
    original = error.original_error
    if original is not None and not isinstance(original, ApiError):
        logger.exception("resolver failed", exc_info=original)
    return error.formatted


@dataclass(frozen=True)
class InferenceAutomation:
    """The service's automation rule for batch images: one inference request per saved image,
    sent to the batch's queue, whose URL the service computes from the queue's name."""

    stage: str
    region: str
    account: str
    ml_model_id: str = "megadetector_v5a"

    def queue_url(self, batch_id: str) -> str:
        return (f"https://sqs.{self.region}.amazonaws.com/{self.account}/"
                f"animl-ingest-{self.stage}-{batch_id}")

    def image_saved(self, image: dict[str, Any]) -> None:
        import boto3

        message = {"mlModelId": self.ml_model_id, "event": "image-added",
                   "image": {k: image.get(k) for k in ("_id", "batchId", "bucket", "path")},
                   "projectId": image["projectId"], "automationRuleId": "standin-rule"}
        sqs = boto3.client("sqs", region_name=self.region)
        try:
            sqs.send_message(QueueUrl=self.queue_url(image["batchId"]),
                             MessageBody=json.dumps(message))
        except Exception as exc:  # noqa: BLE001 - the image is saved; the request is lost
            logger.warning("inference request for %s not sent: %s", image["_id"], exc)


@dataclass(frozen=True)
class Fault:
    """Answer calls of `operation` (whose variables contain `body_contains`) with `status`."""

    operation: str
    status: int = 503
    body_contains: str | None = None
    delay_seconds: float = 0.0  # answer this late (past the client's timeout: a timeout)


class StandinApi:
    """The stand-in API on 127.0.0.1; port 0 picks a free port."""

    def __init__(self, db_path: Path | str, api_key: str, port: int = 0,
                 host: str = "127.0.0.1", automation: InferenceAutomation | None = None) -> None:
        self.store = Store(db_path)
        self.automation = automation
        self._api_key = api_key
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        # Test control: requests that match a fault get its HTTP status instead of an answer.
        self.faults: list[Fault] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/internal/graphql"

    def start(self) -> StandinApi:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="standin-api")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.store.close()

    def __enter__(self) -> StandinApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fault_for(self, body: dict[str, Any]) -> Fault | None:
        """The first fault a request matches, if any."""
        query = str(body.get("query") or "")
        for fault in list(self.faults):
            calls = re.search(rf"\b{re.escape(fault.operation)}\s*\(", query)
            if calls and (fault.body_contains is None
                          or fault.body_contains in json.dumps(body.get("variables"))):
                return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self
        resolvers = Resolvers(self.store, self.automation)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                if not hmac.compare_digest(self.headers.get("x-api-key", ""), api._api_key):
                    self._reply(401, {"errors": [{"message": "Authentication error: no valid "
                                                  "x-api-key or bearer token"}]})
                    return
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY_BYTES:
                    self._reply(413, {"errors": [{"message": "Request body too large"}]})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self._reply(400, {"errors": [{"message": "Body is not JSON"}]})
                    return
                fault = api.fault_for(body)
                if fault:
                    time.sleep(fault.delay_seconds)
                    self._reply(fault.status,
                                {"errors": [{"message": "Service unavailable (injected)"}]})
                    return
                self._reply(200, execute(resolvers, body))

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                logger.debug("standin-api: " + format, *args)

        return Handler


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
