"""Local batches: `run` (a whole batch on the embedded engine), `upload` (to a served stage, as
the web app does) and `sample` (camera-trap-like images to try them on)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from animl_local.cli.errors import EXIT_FAILED, EXIT_OK, UserError, existing_stage
from animl_local.local_run import (
    LOCAL_STAGE,
    UnusableInput,
    archive_for,
    claim_out_folder,
    run_batch,
)
from animl_local.progress import CLEANING_UP, ZIPPING, Progress


def add_commands(commands: Any) -> None:
    run = commands.add_parser("run", help="ingest a .zip or a folder on the embedded engine")
    run.add_argument("path", type=Path, help="a .zip archive or a folder of images")
    run.add_argument("--out", type=Path, help="output folder (default ./animl-out/<batch-id>/)")
    run.add_argument("--serial", help="serial number override for every image of the batch")
    run.add_argument("--force", action="store_true",
                     help="clear an --out folder that already holds a report (refused otherwise)")
    run.add_argument("--quiet", action="store_true",
                     help="no progress on stderr (the closing line and errors still show)")
    run.set_defaults(command=command_run)

    upload = commands.add_parser("upload", help="create a batch and upload PATH as its zip, as "
                                                "the web app does (to a served local stage)")
    upload.add_argument("path", type=Path)
    upload.add_argument("--serial")
    upload.add_argument("--stage", default=LOCAL_STAGE)
    upload.set_defaults(command=command_upload)

    sample = commands.add_parser("sample", help="write camera-trap-like sample images")
    sample.add_argument("folder", type=Path)
    sample.add_argument("--count", type=int, default=12)
    sample.set_defaults(command=command_sample)


def command_run(args: argparse.Namespace) -> int:
    _claim_out(args.out, args.force)
    if not args.debug:
        # Many concurrent handlers share a client's pool of 10 connections to the local
        # endpoint; a connection past that is closed, not lost: no news for the user.
        logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    # The progress outlives the scratch folder: removing the temp zip takes a moment too.
    with _progress(args.quiet) as progress, \
            tempfile.TemporaryDirectory(prefix="animl-ingest-") as scratch:
        if progress and args.path.is_dir():
            progress.phase(ZIPPING)
        archive = _archive(args.path, Path(scratch))
        result = run_batch(archive, args.path.name, args.out, args.serial, Path(scratch),
                           progress=progress)
        if progress:
            progress.phase(CLEANING_UP)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(result.counts.items()))
    counts = counts or "no images"
    if result.status == "SUCCEEDED":
        print(f"batch {result.batch_id} SUCCEEDED in {result.seconds:.1f} s: {counts}. "
              f"Report: {result.out / 'report.json'}")
        return EXIT_OK
    print(f"batch {result.batch_id} {result.status}: {result.reason}. "
          f"Report: {result.out / 'report.json'}", file=sys.stderr)
    return EXIT_FAILED


def command_upload(args: argparse.Namespace) -> int:
    from animl_local.webapp import upload_batch

    stage = existing_stage(args.stage)
    with tempfile.TemporaryDirectory(prefix="animl-upload-") as scratch:
        archive = _archive(args.path, Path(scratch))
        batch_id = upload_batch(stage.api(), archive, args.path.name, args.serial)
    print(batch_id)
    return EXIT_OK


def command_sample(args: argparse.Namespace) -> int:
    from animl_local.samples import write_sample_folder

    written = write_sample_folder(args.folder, args.count)
    print(f"wrote {len(written)} sample images under {args.folder}")
    return EXIT_OK


def _claim_out(out: Path | None, force: bool) -> None:
    try:
        claim_out_folder(out, force)
    except UnusableInput as exc:
        raise UserError(str(exc)) from None


def _archive(path: Path, scratch: Path) -> Path:
    try:
        return archive_for(path, scratch)
    except UnusableInput as exc:
        raise UserError(str(exc)) from None


def _progress(quiet: bool) -> AbstractContextManager[Progress | None]:
    """The run's progress on stderr, rewritten in place on a terminal; none with --quiet."""
    if quiet:
        return nullcontext()
    return Progress(sys.stderr, terminal=sys.stderr.isatty())
