"""What operators do to a stage's batches: `stop`, `redrive`, `reprocess`, `parking-lot replay`."""

from __future__ import annotations

import argparse
from typing import Any

from animl_local.cli.errors import EXIT_OK, NotFound, UserError, default_stage, existing_stage


def add_commands(commands: Any) -> None:
    stop = commands.add_parser("stop", help="stop a batch: end its execution, release its "
                               "inference resources, set processingEnd (on the stage's AWS)")
    stop.add_argument("batch_id")
    stop.add_argument("--stage", default=default_stage())
    stop.set_defaults(command=command_stop)

    redrive = commands.add_parser("redrive", help="re-drive a failed batch from the state that "
                                  "failed (never a duplicate)")
    redrive.add_argument("batch_id")
    redrive.add_argument("--stage", default=default_stage())
    redrive.set_defaults(command=command_redrive)

    reprocess = commands.add_parser("reprocess", help="ingest a batch's dead-lettered images again")
    reprocess.add_argument("batch_id")
    reprocess.add_argument("--reason", help="only images dead-lettered for this reason")
    reprocess.add_argument("--serial", help="the camera serial number for the batch's images "
                           "(set as the batch's overrideSerial; fixes \"Unknown Serial Number\")")
    reprocess.add_argument("--stage", default=default_stage())
    reprocess.set_defaults(command=command_reprocess)

    parking = commands.add_parser("parking-lot", help="images parked during maintenance")
    parking_what = parking.add_subparsers(required=True, metavar="WHAT")
    replay = parking_what.add_parser("replay", help="move parked images back to be ingested")
    replay.add_argument("--stage", default=default_stage())
    replay.set_defaults(command=command_replay)


def command_stop(args: argparse.Namespace) -> int:
    """stopBatch, as the web app's Stop button: the API invokes IngestDelete-<stage>."""
    from animl_local import operations
    from animl_local.webapp import stop_batch
    from functions.platform.graphql_client import AnimlApiRejected

    stage = existing_stage(args.stage)
    try:
        stop_batch(stage.api(), args.batch_id)
    except AnimlApiRejected as refused:
        # The API answers NOT_FOUND both for a batch it never had and for one already stopped:
        # a batch the stage never ran is not found (3), as in every other command.
        try:
            operations.existing_batch_executions(stage.client("stepfunctions"), stage.settings,
                                                 stage.account, args.batch_id)
        except operations.NoSuchBatch as exc:
            raise NotFound(str(exc)) from None
        raise UserError(f"batch {args.batch_id} not stopped: {refused}") from None
    print(f"batch {args.batch_id}: stop requested; the API invokes "
          f"{stage.settings.ingest_delete_function_name}, which ends its execution, releases its "
          "inference resources and sets processingEnd")
    return EXIT_OK


def command_redrive(args: argparse.Namespace) -> int:
    from animl_local import operations

    stage = existing_stage(args.stage)
    try:
        result = operations.redrive(stage.client("stepfunctions"), stage.settings,
                                    stage.account, args.batch_id)
    except operations.NoSuchBatch as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(f"batch {args.batch_id}: {result['mode']} {result['executionArn']}")
    return EXIT_OK


def command_reprocess(args: argparse.Namespace) -> int:
    from animl_local import operations
    from functions.image.ingest_image import Services

    stage = existing_stage(args.stage)
    s3 = stage.client("s3")
    services = Services(s3=s3, api=stage.api(), settings=stage.settings)
    try:
        counts = operations.reprocess(services, args.batch_id, args.reason, args.serial)
    except operations.NoSuchReason as exc:
        raise NotFound(str(exc)) from None
    except s3.exceptions.NoSuchKey:
        raise NotFound(f"batch {args.batch_id} has no report on stage {args.stage}: it has not "
                       "finished (or never ran) there") from None
    print(f"batch {args.batch_id}: {counts['reprocessed']} reprocessed, {counts['ingested']} "
          f"ingested, {counts['stillDeadLettered']} still dead-lettered")
    return EXIT_OK


def command_replay(args: argparse.Namespace) -> int:
    from animl_local import operations

    stage = existing_stage(args.stage)
    moved = operations.replay_parking_lot(stage.client("s3"), stage.settings)
    print(f"{moved} parked image(s) moved back to {stage.settings.ingestion_bucket}")
    return EXIT_OK
