"""The one engine adapter: a whole stage on moto, with our handlers behind its Lambdas.

`EmbeddedStage` starts moto with its Step Functions interpreter and provisions what a deployed
stage has, by the code that deploys one: the stage's stack (infrastructure/stage.yaml through
deploy.apply_stage_stack: buckets, their policies, the serving distribution, SSM parameters, the
IngestBatch state machine and its role); what Chalice deploys on AWS (one Lambda per Chalice
handler, the ingestion bucket's notification) is made here, as `chalice deploy` cannot run
against moto. Invocations reach the handlers through `lambda_adapter`. On moto the stack's bucket
and IAM policies are stored, not enforced, and the distribution serves nothing.

On AWS an EventBridge rule delivers execution status changes; here the stage's one `watcher`
(animl_local.execution_watcher) sends the same event to the same handler when an execution ends
badly.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import os
import signal
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import boto3
import requests
from botocore.config import Config
from moto import mock_aws
from moto.core.config import DefaultConfig

from animl_local import aws_limits, moto_cloudformation, moto_stepfunctions, operations
from animl_local.botocore_models import botocore_models_parsed_once
from animl_local.execution_watcher import ExecutionWatcher
from animl_local.glibc_heap import heap_kept_small
from animl_local.lambda_adapter import InvocationLog, handlers_serve_invocations
from animl_local.moto_request_cycles import (
    moto_request_bodies_not_copied,
    moto_requests_freed_when_answered,
)
from animl_local.moto_s3_on_disk import s3_objects_on_disk
from animl_local.moto_s3_owner import expected_owners_enforced
from animl_local.moto_s3_urls import s3_urls_read_once
from animl_local.moto_sqs_counts import queue_counts_kept_cheap
from animl_local.moto_sqs_pollers import mapped_queues_polled
from animl_local.report import WorkflowFunctions
from animl_local.stack import MOTO_PARAMETERS
from animl_local.state_machine import (
    child_placeholders,
    function_placeholder,
    load_definition,
    placeholders,
)
from functions.platform import storage
from functions.platform.runtime import reset_runtime, use_image_pool
from functions.platform.settings import APP_NAME, Settings

ACCOUNT_ID = "123456789012"
ENGINE_CONFIG: DefaultConfig = {"stepfunctions": {"execute_state_machine": True},
                                "lambda": {"use_docker": False}}

# Local runs retry at once and keep the fan-out to what two cores can use.
LOCAL_TUNING: dict[str, Any] = {"RetryIntervalSeconds": 1, "RetryMaxAttempts": 2,
                                "MapMaxConcurrency": 4, "InferencePollSeconds": 0}

# The stack's parameters that infrastructure/stages.json sets for a deployed stage (the others
# keep the template's defaults): the web app's development origin; and moto's (plain HTTP).
EMBEDDED_STACK_PARAMETERS = {"WebAppOrigins": "http://localhost:5173", **MOTO_PARAMETERS}

ENTRY_FUNCTION = "on_upload"
INGEST_DELETE_FUNCTION = "ingest_delete"
STATUS_CHANGE_FUNCTION = "on_execution_status_change"


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # the Chalice name, e.g. "inspect_archive"
    handler: str  # e.g. "chalice_app.handlers.inspect_archive"


INFERENCE_CONSUMER = FunctionSpec("batchinference", "animl_local.inference_consumer.handle")


@contextmanager
def _image_pool(processes: int) -> Iterator[None]:
    """The handlers' image work on `processes` processes ("spawn": this process is full of
    threads), shut down with the stage, so no worker outlives it. 0: in the handler's thread."""
    if processes <= 0:
        yield
        return
    # Ctrl-C reaches the terminal's whole process group, but the stage decides when its
    # workers end (the pool's shutdown): a worker ignores SIGINT, from its start (a disposition
    # ignored across exec stays ignored) and after (the initializer; builtins, so that
    # unpickling them imports nothing of ours).
    pool = ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn"),
                               initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
    # Start the workers now, while the stage provisions and the archive uploads: each spawns
    # an interpreter and imports the image code (seconds each on a busy machine), which the
    # first group's images would otherwise wait for.
    with _interrupts_ignored():
        for _ in range(processes):
            pool.submit(importlib.import_module, "functions.image.ingest_image")
    use_image_pool(pool)
    try:
        yield
    finally:
        use_image_pool(None)
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored meanwhile, in the main thread (elsewhere signals cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def chalice_functions() -> list[FunctionSpec]:
    """Every Lambda the Chalice app defines, read from the app itself."""
    from chalice_app.application import app  # late: the environment must be set first

    specs = [FunctionSpec(f.name, f.handler_string) for f in app.pure_lambda_functions]
    specs += [FunctionSpec(e.name, e.handler_string) for e in app.event_sources]
    return specs


@dataclass
class EmbeddedStage:
    settings: Settings
    api_url: str
    api_key: str = field(repr=False)
    tuning: dict[str, Any] = field(default_factory=lambda: dict(LOCAL_TUNING))
    invocations: InvocationLog = field(default_factory=InvocationLog)
    function_arns: dict[str, str] = field(default_factory=dict)
    # None: moto in this process only. A port (0: any free one): a moto server, so that other
    # processes (operator commands with AWS_ENDPOINT_URL) reach the same stage.
    server_port: int | None = None
    endpoint_url: str | None = None
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _group_sizes: dict[str, dict[str, int]] = field(default_factory=dict, repr=False)
    _watcher: ExecutionWatcher | None = field(default=None, repr=False)
    _session: Any = field(default_factory=boto3.session.Session, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)
    _clients_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _browser_s3: Any = field(default=None, repr=False)

    # lifecycle

    def __enter__(self) -> EmbeddedStage:
        # Handlers keep a container's runtime in module state: this stage starts with its own.
        reset_runtime()
        self._stack.callback(reset_runtime)
        self._stack.enter_context(botocore_models_parsed_once())  # not again per session
        # Before any of the stage's threads: they share two arenas, trimmed each second.
        self._stack.enter_context(heap_kept_small())
        self._stack.enter_context(_lambda_environment(self.settings))
        # A whole archive uploaded and read back in ranges stays on disk, not in memory.
        self._stack.enter_context(s3_objects_on_disk())
        # Bodies sent to moto are let go when answered, not at the next full collection.
        self._stack.enter_context(moto_requests_freed_when_answered())
        self._stack.enter_context(moto_request_bodies_not_copied())  # nor read back as a copy
        self._stack.enter_context(expected_owners_enforced())  # a wrong owner is refused, as S3
        self._stack.enter_context(s3_urls_read_once())  # not re-imported at every S3 request
        # RedriveExecution and failing Map runs, as on AWS (moto's interpreter has neither).
        moto_stepfunctions.install()
        if self.server_port is None:
            self._stack.enter_context(mock_aws(config=ENGINE_CONFIG))
        else:
            self.endpoint_url = self._stack.enter_context(_moto_server(self.server_port))
        self._stack.enter_context(aws_limits.enforced())  # refuse what AWS refuses
        self.invocations = self._stack.enter_context(handlers_serve_invocations())
        # A send, a receive and a count scan the backlog: cheaply, not reading the clock or
        # building the queue's attributes per message.
        self._stack.enter_context(queue_counts_kept_cheap())
        # Batch queues are read by pollers of their own, as Lambda's, not inside SendMessage.
        self._stack.enter_context(mapped_queues_polled())
        self._stack.enter_context(_image_pool(self.settings.image_worker_processes))
        try:
            self.provision()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def client(self, name: str) -> Any:
        """One client per service for the stage (clients are thread-safe; making one loads
        the service's model, which took most of the stage's start-up)."""
        with self._clients_lock:
            if name not in self._clients:
                self._clients[name] = self._session.client(name, region_name=self.settings.region)
            return self._clients[name]

    def provision(self) -> None:
        """The stage as `animl-ingest deploy` makes it on AWS, each part by whom makes it there:
        the Animl API's URL and key (the API's deploy), the functions and the bucket
        notification (Chalice here: `chalice deploy` cannot run against moto), and everything
        else through the stage's own stack (deploy.apply_stage_stack on moto's CloudFormation)."""
        self.client("ssm").put_parameter(Name=self.settings.api_url_parameter, Value=self.api_url,
                                         Type="String", Overwrite=True)
        self.client("secretsmanager").create_secret(
            Name=self.settings.api_key_secret, SecretString=json.dumps({"apikey": self.api_key})
        )
        role_arn = self._create_role()
        for spec in chalice_functions():
            self.function_arns[spec.name] = self._create_function(spec, role_arn)
            if spec.name == INGEST_DELETE_FUNCTION:
                # The API's stopBatch invokes this name only (deploy.py publishes it on AWS).
                self._create_function(spec, role_arn,
                                      name=self.settings.ingest_delete_function_name)
        # The API's inference Lambda, which the batch queues' mappings invoke.
        self._create_function(INFERENCE_CONSUMER, role_arn,
                              name=self.settings.inference_function_name)
        self._apply_stack()
        self.client("s3").put_bucket_notification_configuration(
            Bucket=self.settings.ingestion_bucket,
            NotificationConfiguration={"LambdaFunctionConfigurations": [{
                "LambdaFunctionArn": self.function_arns[ENTRY_FUNCTION],
                "Events": ["s3:ObjectCreated:*"],
            }]},
        )

    def _apply_stack(self) -> None:
        from animl_local import deploy
        from animl_local.aws_stage import Stage

        moto_cloudformation.install()
        stage = Stage(settings=self.settings, session=self._session)
        _, expected = deploy.apply_stage_stack(stage, ACCOUNT_ID, sorted(self.function_arns),
                                               EMBEDDED_STACK_PARAMETERS, self.tuning)
        wrong = sorted(f for f, arn in expected.items() if self.function_arns[f] != arn)
        if wrong:  # the stack's state machine would invoke functions that do not exist
            raise RuntimeError(f"functions made under other ARNs than the stack's: {wrong}")

    def _create_role(self) -> str:
        """The functions' role (Chalice makes one per stage on AWS)."""
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"Service": "lambda.amazonaws.com"}}]}
        role = self.client("iam").create_role(RoleName=f"{APP_NAME}-{self.settings.stage}",
                                              AssumeRolePolicyDocument=json.dumps(trust))
        return str(role["Role"]["Arn"])

    def _create_function(self, spec: FunctionSpec, role_arn: str, name: str | None = None
                         ) -> str:
        created = self.client("lambda").create_function(
            FunctionName=name or self._deployed_name(spec.name),
            Runtime="python3.11",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": _placeholder_code()},
            Timeout=900,
            MemorySize=3008,
        )
        return created["FunctionArn"]

    # batches

    @property
    def state_machine_arn(self) -> str:
        return self.settings.state_machine_arn(ACCOUNT_ID)

    def execution_arn(self, batch_id: str) -> str:
        return self.settings.execution_arn(ACCOUNT_ID, batch_id)

    def put_part(self, created: dict[str, Any], number: int, body: Any) -> str:
        """A browser-style upload's part, written straight into the multipart upload that
        createUpload made (in-process, an HTTP PUT to the presigned URL would pass through
        moto's HTTP mock, which copies and keeps request bodies). Its payload is unsigned, as
        a presigned URL's PUT is (hashing every 100 MB part for SigV4 cost a second a GB)."""
        if self._browser_s3 is None:
            self._browser_s3 = self._session.client(
                "s3", region_name=self.settings.region,
                config=Config(s3={"payload_signing_enabled": False}))
        written = self._browser_s3.upload_part(
            Bucket=self.settings.ingestion_bucket, Key=f"{created['batch']}.zip",
            UploadId=created["multipartUploadId"], PartNumber=number, Body=body.read())
        return str(written["ETag"])

    def upload_archive(self, batch_id: str, archive_path: str) -> None:
        """Upload `<batch-id>.zip` as the web app does; the bucket notification does the rest."""
        self.client("s3").upload_file(archive_path, self.settings.ingestion_bucket,
                                      f"{batch_id}.zip")

    @property
    def watcher(self) -> ExecutionWatcher:
        """The one watcher of this stage's executions (made once: it remembers what it
        reported)."""
        if self._watcher is None:
            self._watcher = ExecutionWatcher(self.client("stepfunctions"), self.state_machine_arn,
                                             self.deliver_status_change, self.settings.region,
                                             ACCOUNT_ID)
        return self._watcher

    def wait_for_execution(self, batch_id: str, on_progress: Callable[[int], None] | None = None,
                           poll_seconds: float = 0.25, timeout_seconds: float = 3600,
                           execution_name: str | None = None) -> dict[str, Any]:
        """Block until the batch's execution (or the named one of it) ends; a bad end goes to
        the status-change handler, as EventBridge delivers it on AWS."""
        progress = (lambda: on_progress(self.images_done(batch_id))) if on_progress else None
        return self.watcher.wait(self.execution_arn(execution_name or batch_id), progress,
                                 poll_seconds, timeout_seconds)

    def images_done(self, batch_id: str) -> int:
        """Images with a recorded outcome so far (from the per-group outcome objects)."""
        s3 = self.client("s3")
        work = self.settings.batch_work_bucket
        sizes = self._group_sizes.get(batch_id)
        if sizes is None:  # read the manifest once, not at every poll
            try:
                items = storage.get_json(s3, work, storage.manifest_key(batch_id))
            except s3.exceptions.NoSuchKey:
                return 0
            sizes = self._group_sizes[batch_id] = {
                storage.outcomes_key(batch_id, item["group"]): len(item["entries"])
                for item in items}
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=work, Prefix=storage.outcomes_prefix(batch_id))
        return sum(sizes.get(obj["Key"], 0) for page in pages for obj in page.get("Contents", []))

    def run_schedule(self, function: str) -> Any:
        """Invoke a scheduled function as EventBridge's timer would; returns its result."""
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT_ID,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.settings.region, "resources": [], "detail": {},
        }
        reply = self.client("lambda").invoke(FunctionName=self.function_arns[function],
                                             Payload=json.dumps(event).encode())
        return json.loads(reply["Payload"].read())

    def deliver_status_change(self, event: dict[str, Any]) -> None:
        """What EventBridge does on AWS with a status-change event: invoke the handler."""
        self.client("lambda").invoke(FunctionName=self.function_arns[STATUS_CHANGE_FUNCTION],
                                     Payload=json.dumps(event).encode())

    def workflow_functions(self) -> WorkflowFunctions:
        """Deployed names of the functions the state machine calls, parent and children."""
        definition = load_definition()
        used, in_children = placeholders(definition), child_placeholders(definition)

        def deployed(wanted: set[str]) -> frozenset[str]:
            return frozenset(self._deployed_name(name) for name in self.function_arns
                             if function_placeholder(name) in wanted)
        return WorkflowFunctions(parent=deployed(used - in_children),
                                 children=deployed(in_children), prefix=self._deployed_name(""))

    def _deployed_name(self, name: str) -> str:
        return self.settings.function_name(name)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return operations.execution_history(self.client("stepfunctions"), execution_arn)


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """These environment variables for this process while the context lasts."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# What moto needs to keep up with a whole batch in one process (local only):
# - botocore's default checksums send bodies aws-chunked, 1 MB at a time, which both botocore
#   and moto reassemble by repeated concatenation (quadratic: a 100 MB part took 30 s, 5 s
#   without); checksums only where an operation requires them;
# - moto keeps objects under ~5 MB in memory, i.e. every photo and rendition of the run; from
#   64 KB up they spool to disk.
MOTO_FRIENDLY_ENVIRONMENT = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(64 * 1024),
}


def _lambda_environment(settings: Settings) -> AbstractContextManager[None]:
    """The environment a deployed function sees, set for this process while the stage runs."""
    return _environment({
        **settings.to_environment(),
        "AWS_DEFAULT_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "INGESTION_BUCKET": settings.ingestion_bucket,
        **MOTO_FRIENDLY_ENVIRONMENT,
    })


@contextmanager
def moto_config_restored() -> Iterator[None]:
    """A server in this process takes `/moto-api/config` into moto's global config, where it
    outlives the server: put it back, or later in-process mocks run with the engine on."""
    from moto.core import config as moto_config

    live: dict[str, Any] = moto_config.default_user_config  # type: ignore[assignment]
    saved = copy.deepcopy(live)
    try:
        yield
    finally:
        live.clear()
        live.update(saved)


@contextmanager
def _moto_server(port: int) -> Iterator[str]:
    """A moto server on loopback, with the engine switched on; this process's clients use it."""
    from moto.server import ThreadedMotoServer

    with moto_config_restored():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        assert server._server is not None  # started above
        url = f"http://127.0.0.1:{server._server.server_port}"  # the port it took
        # The interpreter calls Lambda on localhost:MOTO_PORT; every boto3 client here, the
        # handlers' included, follows AWS_ENDPOINT_URL.
        try:
            with _environment({"AWS_ENDPOINT_URL": url, "MOTO_PORT": url.rsplit(":", 1)[1]}):
                config: dict[str, Any] = {**ENGINE_CONFIG}
                requests.post(f"{url}/moto-api/config", json=config,
                              timeout=10).raise_for_status()
                yield url
        finally:
            server.stop()


def _placeholder_code() -> bytes:
    # moto stores code but never runs it: the adapter imports the handler from this process.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers run in-process through animl_local.lambda_adapter")
    return buffer.getvalue()
