"""A bulk upload through the whole stack on this machine: the stand-in API, the embedded stage,
the upload as the web app makes it, the execution watched to its end, and the report.

Used by `animl-ingest run` and the benchmarks.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from animl_local.progress import (
    COPYING,
    INSPECTING,
    READING_OUTCOMES,
    STARTING,
    STOPPING,
    UPLOADING,
    WRITING_REPORT,
    Progress,
)
from animl_local.secret_redaction import keep_secret
from functions.platform import reasons
from functions.platform.settings import Settings

LOCAL_STAGE = "local"


class UnusableInput(ValueError):
    """The path given cannot be ingested; the message says why."""


@dataclass(frozen=True)
class RunResult:
    batch_id: str
    status: str
    out: Path
    counts: dict[str, int]
    reason: str | None
    seconds: float
    report_seconds: float = 0.0  # after the execution ended: the report and the copies


def local_settings() -> Settings:
    """The local stage: the stand-in consumer drains a queue at once, so two idle polls do;
    image work runs in a process pool so every core works (the engine's threads share one)."""
    return Settings(stage=LOCAL_STAGE, inference_idle_polls=2, inference_max_wait_seconds=600,
                    image_worker_processes=os.cpu_count() or 2)


def archive_for(path: Path, scratch: Path) -> Path:
    """The zip to upload: PATH itself, or PATH (a folder) zipped into scratch."""
    if not path.exists():
        raise UnusableInput(f"no such file or folder: {path}")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise UnusableInput(f"{path} is neither a .zip archive nor a folder")
        return path
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not any(reasons.is_image_name(p.name) for p in files):
        raise UnusableInput(f"{path} holds no .jpg, .jpeg or .png images: nothing to ingest")
    archive = scratch / f"{path.name or 'upload'}.zip"
    # Images barely compress: store them, as camera-trap users' zips mostly do.
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for file in files:
            zf.write(file, file.relative_to(path).as_posix())
    return archive


# What a run writes into its --out folder first, so a folder holding one has held a run.
REPORT_FILES = ("report.json", "report.html")


def claim_out_folder(out: Path | None, force: bool) -> None:
    """Refuse an --out that already holds a run's report (two batches' files would mix in it,
    the report listing only one), or with `force` clear it first."""
    if out is None or not any((out / name).exists() for name in REPORT_FILES):
        return
    if not force:
        raise UnusableInput(f"{out} already holds a report: pass --force to clear it, or choose "
                            "another --out")
    shutil.rmtree(out)


def run_batch(archive: Path, original_name: str, out: Path | None, serial: str | None,
              scratch: Path, progress: Progress | None = None,
              settings: Settings | None = None) -> RunResult:
    """Create the batch as the web app would, upload it, and wait for the state machine.

    `progress`, when given, is told each phase and the images done."""
    from animl_local.botocore_models import botocore_models_parsed_once

    with botocore_models_parsed_once():  # importing moto makes three sessions of its own
        from animl_local import moto_s3_copies, operations, report
        from animl_local.engine import ACCOUNT_ID, EmbeddedStage
        from animl_local.html_report import write_html_report
        from animl_local.standin_api import StandinApi, StandinAws
        from animl_local.webapp import upload_batch
        from functions.batch.batch_record import read_batch_record
        from functions.platform.graphql_client import AnimlApiClient

    api_key = secrets.token_urlsafe(24)
    keep_secret(api_key)
    db_path = scratch / "animl-api.sqlite3"
    settings = settings or local_settings()
    aws = StandinAws(settings.stage, settings.region, ACCOUNT_ID)
    started = time.monotonic()
    tell = progress.phase if progress else _silent
    tell(STARTING)
    with StandinApi(db_path, api_key, aws=aws) as api, \
            EmbeddedStage(settings, api.url, api_key) as stage, _quiet_if_interrupted():
        client = AnimlApiClient(api.url, api_key)
        tell(UPLOADING)
        put_part = _counting_parts(stage.put_part, archive, progress) if progress else \
            stage.put_part
        batch_id = upload_batch(client, archive, original_name, serial, put_part=put_part)
        out = out or Path("animl-out") / batch_id
        out.mkdir(parents=True, exist_ok=True)
        s3 = stage.client("s3")
        tell(INSPECTING)
        on_count = _image_counter(progress, s3, settings, api.store, batch_id) if progress \
            else None
        description = stage.wait_for_execution(batch_id, on_progress=on_count)
        ended = time.monotonic()
        tell(READING_OUTCOMES)
        images, complete = report.batch_images(s3, settings, batch_id)
        described = operations.describe_batch(stage.client("stepfunctions"), s3, settings,
                                              ACCOUNT_ID, batch_id)
        execution = report.execution_summary(described, stage.invocations.counts,
                                             stage.workflow_functions())
        tell(COPYING)
        # The stage's buckets are moto's in this process: read from its store, not by GetObject.
        report.mirror_objects(moto_s3_copies.copy_object, settings, images, out)
        tell(WRITING_REPORT)
        batch = read_batch_record(s3, settings, batch_id)
        report.write_report(out, batch, api.store.batch_counts(batch_id), execution, images,
                            complete)
        write_html_report(out / "report.html", described, images)
        tell(STOPPING)
    # Closed, so its write-ahead log is checkpointed into the file copied.
    shutil.copy(db_path, out / "animl-api.sqlite3")
    report_seconds = time.monotonic() - ended
    counts: dict[str, int] = {}
    for row in images:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    reason = None
    if description["status"] != "SUCCEEDED":
        reason = failure_line(execution, batch)
    return RunResult(batch_id, description["status"], out, counts, reason,
                     time.monotonic() - started, report_seconds)


@contextmanager
def _quiet_if_interrupted() -> Iterator[None]:
    """On Ctrl-C or SIGTERM, the stand-in API's requests still in flight fail against a store
    that closes as the run unwinds; their error logs are not news to the user who stopped it."""
    try:
        yield
    except BaseException as stop:
        if not isinstance(stop, Exception):
            logging.getLogger("animl_local.standin_api").setLevel(logging.CRITICAL)
        raise


def _silent(phase: str) -> None:
    pass


def _image_counter(progress: Progress, s3: Any, settings: Settings, store: Any,
                   batch_id: str) -> Callable[[int], None]:
    """Passes the images done on with the batch's total (read until the archive's inspection
    has recorded it, then kept). `done` counts outcomes, written a whole group at a time; what
    the web app sees (images and image errors in the API) moves one image at a time."""
    from functions.batch.batch_record import read_batch_record

    known: dict[str, int] = {}

    def count(done: int) -> None:
        if "total" not in known:
            total = read_batch_record(s3, settings, batch_id).get("total")
            if total is None:
                progress.images(done, None)
                return
            known["total"] = int(total)
        seen = store.batch_counts(batch_id)
        in_api = min(known["total"], seen["images"] + seen["imageErrors"])
        progress.images(max(done, in_api), known["total"])
    return count


def _counting_parts(put_part: Callable[[dict[str, Any], int, Any], str], archive: Path,
                    progress: Progress) -> Callable[[dict[str, Any], int, Any], str]:
    """`put_part` that tells `progress` the bytes uploaded so far."""
    size = archive.stat().st_size
    sent = [0]

    def put(created: dict[str, Any], number: int, body: Any) -> str:
        etag = put_part(created, number, body)
        sent[0] += len(body)
        progress.uploaded(sent[0], size)
        return etag
    return put


def failure_line(execution: dict[str, Any], batch: dict[str, Any] | None) -> str:
    errors = (batch or {}).get("errors") or []
    if errors:
        return str(errors[-1])
    return f"failed at {execution.get('failedState')}: {execution.get('error')}"
