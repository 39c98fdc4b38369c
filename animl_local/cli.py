"""`animl-ingest`: run a bulk upload through the whole stack on this machine, no AWS account."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from animl_local.aws_stage import Stage
from functions.platform import reasons

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# As shells report a process ended by SIGINT or SIGTERM: 128 + the signal's number.
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM
LOCAL_STAGE = "local"


class UserError(Exception):
    """A problem the user can fix; printed as one line, no traceback."""


@dataclass(frozen=True)
class RunResult:
    batch_id: str
    status: str
    out: Path
    counts: dict[str, int]
    reason: str | None
    seconds: float
    report_seconds: float = 0.0  # after the execution ended: the report and the copies


class Terminated(Exception):
    """SIGTERM, raised where the process is so that every `with` unwinds: temp files, worker
    processes and servers go with it."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.debug:
        # The handlers log at INFO for CloudWatch; here the command's own lines say enough.
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.WARNING)
        # The engine logs every failed state as an ERROR; the run's outcome says it once.
        logging.getLogger("moto").setLevel(logging.CRITICAL)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.command(args)
    except UserError as exc:
        print(f"animl-ingest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("animl-ingest: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("animl-ingest: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # one line for the user, details under --debug
        if args.debug:
            raise
        print(f"animl-ingest: unexpected {type(exc).__name__}: {exc} (run with --debug for "
              "details)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="animl-ingest", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="log everything, show tracebacks")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="ingest a .zip or a folder on the embedded engine")
    run.add_argument("path", type=Path, help="a .zip archive or a folder of images")
    run.add_argument("--out", type=Path, help="output folder (default ./animl-out/<batch-id>/)")
    run.add_argument("--serial", help="serial number override for every image of the batch")
    run.set_defaults(command=command_run)

    stop = commands.add_parser("stop", help="stop a batch: end its execution, release its "
                               "inference resources, set processingEnd (on the stage's AWS)")
    stop.add_argument("batch_id")
    stop.add_argument("--stage", default="dev")
    stop.set_defaults(command=command_stop)

    executions = commands.add_parser("executions", help="inspect the stage's batch executions")
    what = executions.add_subparsers(required=True, metavar="WHAT")
    listing = what.add_parser("list", help="executions, newest first")
    listing.add_argument("--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT",
                                              "ABORTED"])
    describe = what.add_parser("describe", help="a batch: failed state, map runs, batch record")
    describe.add_argument("batch_id")
    describe.add_argument("--html", type=Path, help="also write an HTML execution report here")
    history = what.add_parser("history", help="a batch's per-state timeline")
    history.add_argument("batch_id")
    for view, sub in (("list", listing), ("describe", describe), ("history", history)):
        sub.add_argument("--stage", default="dev")
        sub.set_defaults(command=command_executions, view=view)

    redrive = commands.add_parser("redrive", help="re-drive a failed batch (never a duplicate)")
    redrive.add_argument("batch_id")
    redrive.add_argument("--stage", default="dev")
    redrive.set_defaults(command=command_redrive)

    reprocess = commands.add_parser("reprocess", help="ingest a batch's dead-lettered images again")
    reprocess.add_argument("batch_id")
    reprocess.add_argument("--reason", help="only images dead-lettered for this reason")
    reprocess.add_argument("--stage", default="dev")
    reprocess.set_defaults(command=command_reprocess)

    parking = commands.add_parser("parking-lot", help="images parked during maintenance")
    parking_what = parking.add_subparsers(required=True, metavar="WHAT")
    replay = parking_what.add_parser("replay", help="move parked images back to be ingested")
    replay.add_argument("--stage", default="dev")
    replay.set_defaults(command=command_replay)

    serve = commands.add_parser(
        "serve", help="keep the embedded stage running behind a local AWS endpoint, so other "
                      "commands (with AWS_ENDPOINT_URL) work on it as on AWS")
    serve.add_argument("--port", type=int, default=5000, help="AWS endpoint port (0: any)")
    serve.set_defaults(command=command_serve)
    upload = commands.add_parser("upload", help="create a batch and upload PATH as its zip, as "
                                                "the web app does (to a served local stage)")
    upload.add_argument("path", type=Path)
    upload.add_argument("--serial")
    upload.add_argument("--stage", default=LOCAL_STAGE)
    upload.set_defaults(command=command_upload)

    deploy = commands.add_parser("deploy", help="deploy or update a stage on AWS")
    deploy.add_argument("--stage", required=True)
    deploy.set_defaults(command=command_deploy)
    teardown = commands.add_parser("teardown", help="remove a stage from AWS")
    teardown.add_argument("--stage", required=True)
    teardown.add_argument("--yes", action="store_true",
                          help="required for a stage that keeps its data (prod)")
    teardown.set_defaults(command=command_teardown)

    sample = commands.add_parser("sample", help="write camera-trap-like sample images")
    sample.add_argument("folder", type=Path)
    sample.add_argument("--count", type=int, default=12)
    sample.set_defaults(command=command_sample)
    return parser


def command_stop(args: argparse.Namespace) -> int:
    """stopBatch, as the web app's Stop button: the API invokes IngestDelete-<stage>."""
    from animl_local.webapp import stop_batch
    from functions.platform.graphql_client import AnimlApiRejected

    stage = Stage.named(args.stage)
    try:
        stop_batch(stage.api(), args.batch_id)
    except AnimlApiRejected as refused:
        raise UserError(f"batch {args.batch_id} not stopped: {refused}") from None
    print(f"batch {args.batch_id}: stop requested; the API invokes "
          f"{stage.settings.ingest_delete_function_name}, which ends its execution, releases its "
          "inference resources and sets processingEnd")
    return EXIT_OK


def command_executions(args: argparse.Namespace) -> int:
    from animl_local import operations

    stage = Stage.named(args.stage)
    sfn = stage.client("stepfunctions")
    if args.view == "list":
        rows = operations.list_executions(sfn, stage.settings.state_machine_arn(stage.account),
                                          args.status)
        for row in rows:
            print(f"{row['name']}  {row['status']:<9}  {row['startDate']}")
        return EXIT_OK
    described = operations.describe_batch(sfn, stage.client("s3"), stage.settings,
                                          stage.account, args.batch_id)
    if args.view == "history":
        for row in described["timeline"]:
            print(f"{row['state']:<24} {row['status']:<9} {row.get('seconds', ''):>8}  "
                  f"{row.get('error') or ''}")
        return EXIT_OK
    print(operations.to_json({k: v for k, v in described.items() if k != "timeline"}))
    if args.html:
        from animl_local.html_report import write_html_report
        from animl_local.report import batch_images

        images, _ = batch_images(stage.client("s3"), stage.settings, args.batch_id)
        write_html_report(args.html, described, images)
    return EXIT_OK


def command_redrive(args: argparse.Namespace) -> int:
    from animl_local import operations

    stage = Stage.named(args.stage)
    try:
        result = operations.redrive(stage.client("stepfunctions"), stage.settings,
                                    stage.account, args.batch_id)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(f"batch {args.batch_id}: {result['mode']} {result['executionArn']}")
    return EXIT_OK


def command_reprocess(args: argparse.Namespace) -> int:
    from animl_local import operations
    from functions.image.ingest_image import Services

    stage = Stage.named(args.stage)
    services = Services(s3=stage.client("s3"), api=stage.api(), settings=stage.settings)
    counts = operations.reprocess(services, args.batch_id, args.reason)
    print(f"batch {args.batch_id}: {counts['reprocessed']} reprocessed, {counts['ingested']} "
          f"ingested, {counts['stillDeadLettered']} still dead-lettered")
    return EXIT_OK


def command_replay(args: argparse.Namespace) -> int:
    from animl_local import operations

    stage = Stage.named(args.stage)
    moved = operations.replay_parking_lot(stage.client("s3"), stage.settings)
    print(f"{moved} parked image(s) moved back to {stage.settings.ingestion_bucket}")
    return EXIT_OK


def command_deploy(args: argparse.Namespace) -> int:
    from animl_local.deploy import DeployError, deploy

    try:
        result = deploy(Stage.named(args.stage))
    except DeployError as exc:
        raise UserError(str(exc)) from None
    change = result["stack"] + (" (nothing to change)" if result["stack"] == "unchanged" else "")
    print(f"stage {result['stage']} deployed: stack {result['stackName']} {change}, "
          f"{len(result['functions'])} functions, {result['ingestDelete']}, "
          f"state machine {result['stateMachineArn']}")
    return EXIT_OK


def command_teardown(args: argparse.Namespace) -> int:
    from animl_local.deploy import DeployError, keeps_data_on_teardown, teardown

    try:
        if keeps_data_on_teardown(args.stage) and not args.yes:
            raise UserError(f"refusing to tear down {args.stage} without --yes (its data "
                            "buckets are kept either way)")
        result = teardown(Stage.named(args.stage))
    except DeployError as exc:
        raise UserError(str(exc)) from None
    kept = result["bucketsKept"]
    print(f"stage {args.stage} removed" + (f"; kept {', '.join(kept)}" if kept else ""))
    return EXIT_OK


def command_serve(args: argparse.Namespace) -> int:
    """The embedded stage behind a moto server until interrupted; reports failed executions
    to the status-change handler as EventBridge would."""
    from animl_local import operations
    from animl_local.engine import ACCOUNT_ID, EmbeddedStage
    from animl_local.standin_api import StandinApi, StandinAws

    settings = local_settings()
    api_key = secrets.token_urlsafe(24)
    aws = StandinAws(settings.stage, settings.region, ACCOUNT_ID)
    with tempfile.TemporaryDirectory(prefix="animl-serve-") as scratch, \
            StandinApi(Path(scratch) / "api.sqlite3", api_key, aws=aws) as api, \
            EmbeddedStage(settings, api.url, api_key, server_port=args.port) as stage:
        print(f"stage {settings.stage} served: AWS_ENDPOINT_URL={stage.endpoint_url} "
              f"AWS_DEFAULT_REGION={settings.region} (stand-in API {api.url}); Ctrl-C stops it",
              flush=True)
        sfn, reported = stage.client("stepfunctions"), set()
        try:
            while True:
                time.sleep(1)
                for status in ("FAILED", "ABORTED", "TIMED_OUT"):
                    for row in operations.list_executions(sfn, stage.state_machine_arn, status):
                        if row["executionArn"] not in reported:
                            reported.add(row["executionArn"])
                            stage.send_status_change(row["executionArn"])
        except KeyboardInterrupt:
            print("stopped", flush=True)
    return EXIT_OK


def command_upload(args: argparse.Namespace) -> int:
    from animl_local.webapp import upload_batch

    stage = Stage.named(args.stage)
    with tempfile.TemporaryDirectory(prefix="animl-upload-") as scratch:
        archive = archive_for(args.path, Path(scratch))
        batch_id = upload_batch(stage.api(), archive, args.path.name, args.serial)
    print(batch_id)
    return EXIT_OK


def command_sample(args: argparse.Namespace) -> int:
    from animl_local.samples import write_sample_folder

    written = write_sample_folder(args.folder, args.count)
    print(f"wrote {len(written)} sample images under {args.folder}")
    return EXIT_OK


def command_run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="animl-ingest-") as scratch:
        archive = archive_for(args.path, Path(scratch))
        result = run_batch(archive, args.path.name, args.out, args.serial, Path(scratch),
                           show_progress=sys.stderr.isatty())
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(result.counts.items()))
    counts = counts or "no images"
    if result.status == "SUCCEEDED":
        print(f"batch {result.batch_id} SUCCEEDED in {result.seconds:.1f} s: {counts}. "
              f"Report: {result.out / 'report.json'}")
        return EXIT_OK
    print(f"batch {result.batch_id} {result.status}: {result.reason}. "
          f"Report: {result.out / 'report.json'}", file=sys.stderr)
    return EXIT_FAILED


def archive_for(path: Path, scratch: Path) -> Path:
    """The zip to upload: PATH itself, or PATH (a folder) zipped into scratch."""
    if not path.exists():
        raise UserError(f"no such file or folder: {path}")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise UserError(f"{path} is neither a .zip archive nor a folder")
        return path
    files = sorted(p for p in path.rglob("*") if p.is_file())
    if not any(reasons.is_image_name(p.name) for p in files):
        raise UserError(f"{path} holds no .jpg, .jpeg or .png images: nothing to ingest")
    archive = scratch / f"{path.name or 'upload'}.zip"
    # Images barely compress: store them, as camera-trap users' zips mostly do.
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for file in files:
            zf.write(file, file.relative_to(path).as_posix())
    return archive


def run_batch(archive: Path, original_name: str, out: Path | None, serial: str | None,
              scratch: Path, show_progress: bool = False, settings: Any = None) -> RunResult:
    """Create the batch as the web app would, upload it, and wait for the state machine."""
    from animl_local import operations, report
    from animl_local.engine import ACCOUNT_ID, EmbeddedStage
    from animl_local.html_report import write_html_report
    from animl_local.standin_api import StandinApi, StandinAws
    from animl_local.webapp import upload_batch
    from functions.batch.batch_record import read_batch_record
    from functions.platform.graphql_client import AnimlApiClient

    api_key = secrets.token_urlsafe(24)
    db_path = scratch / "animl-api.sqlite3"
    settings = settings or local_settings()
    aws = StandinAws(settings.stage, settings.region, ACCOUNT_ID)
    started = time.monotonic()
    with StandinApi(db_path, api_key, aws=aws) as api, \
            EmbeddedStage(settings, api.url, api_key) as stage:
        client = AnimlApiClient(api.url, api_key)
        batch_id = upload_batch(client, archive, original_name, serial, put_part=stage.put_part)
        out = out or Path("animl-out") / batch_id
        out.mkdir(parents=True, exist_ok=True)
        s3 = stage.client("s3")
        progress = _terminal_progress(s3, settings, batch_id) if show_progress else None
        description = stage.wait_for_execution(batch_id, on_progress=progress)
        ended = time.monotonic()
        if show_progress:
            print(file=sys.stderr)
        images, complete = report.batch_images(s3, settings, batch_id)
        described = operations.describe_batch(stage.client("stepfunctions"), s3, settings,
                                              ACCOUNT_ID, batch_id)
        execution = report.execution_summary(described, stage.invocations.counts,
                                             stage.workflow_functions())
        report.mirror_objects(s3, settings, images, out)
        batch = read_batch_record(s3, settings, batch_id)
        report.write_report(out, batch, api.store.batch_counts(batch_id), execution, images,
                            complete)
        write_html_report(out / "report.html", described, images)
    # Closed, so its write-ahead log is checkpointed into the file copied.
    shutil.copy(db_path, out / "animl-api.sqlite3")
    report_seconds = time.monotonic() - ended
    counts: dict[str, int] = {}
    for row in images:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    reason = None
    if description["status"] != "SUCCEEDED":
        reason = _failure_line(execution, batch)
    return RunResult(batch_id, description["status"], out, counts, reason,
                     time.monotonic() - started, report_seconds)


def local_settings() -> Any:
    """The local stage: the stand-in consumer drains a queue at once, so two idle polls do;
    image work runs in a process pool so every core works (the engine's threads share one)."""
    from functions.platform.settings import Settings

    return Settings(stage=LOCAL_STAGE, inference_idle_polls=2, inference_max_wait_seconds=600,
                    image_worker_processes=os.cpu_count() or 2)


def _failure_line(execution: dict[str, Any], batch: dict[str, Any] | None) -> str:
    errors = (batch or {}).get("errors") or []
    if errors:
        return str(errors[-1])
    return f"failed at {execution.get('failedState')}: {execution.get('error')}"


def _terminal_progress(s3: Any, settings: Any, batch_id: str) -> Any:
    from functions.batch.batch_record import read_batch_record

    def show(done: int) -> None:
        total = read_batch_record(s3, settings, batch_id).get("total")
        of_total = f" of {total}" if total is not None else ""
        print(f"\r{batch_id}: {done}{of_total} images done", end="", file=sys.stderr, flush=True)
    return show


if __name__ == "__main__":
    sys.exit(main())
