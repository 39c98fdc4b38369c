"""`executions list | describe | history`: a stage's batch executions, as the console shows them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from animl_local.cli.errors import EXIT_OK, NotFound, default_stage, existing_stage

STATUSES = ["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]


def add_commands(commands: Any) -> None:
    executions = commands.add_parser("executions", help="inspect the stage's batch executions")
    what = executions.add_subparsers(required=True, metavar="WHAT")
    listing = what.add_parser("list", help="executions, newest first")
    # type before choices: `--status failed` is FAILED, as the console's filter ignores case.
    listing.add_argument("--status", choices=STATUSES, type=str.upper, metavar="STATUS",
                         help=f"only executions with this status: {', '.join(STATUSES)} "
                              "(any case)")
    describe = what.add_parser("describe", help="a batch: failed state, map runs, batch record")
    describe.add_argument("batch_id")
    describe.add_argument("--html", type=Path, help="also write an HTML execution report here")
    history = what.add_parser("history", help="a batch's per-state timeline")
    history.add_argument("batch_id")
    for view, sub in (("list", listing), ("describe", describe), ("history", history)):
        sub.add_argument("--stage", default=default_stage())
        sub.set_defaults(command=command_executions, view=view)


def command_executions(args: argparse.Namespace) -> int:
    from animl_local import operations

    stage = existing_stage(args.stage)
    sfn = stage.client("stepfunctions")
    if args.view == "list":
        rows = operations.list_executions(sfn, stage.settings.state_machine_arn(stage.account),
                                          args.status)
        for row in rows:
            print(f"{row['name']}  {row['status']:<9}  {row['startDate']}")
        return EXIT_OK
    try:
        described = operations.describe_batch(sfn, stage.client("s3"), stage.settings,
                                              stage.account, args.batch_id)
    except operations.NoSuchBatch as exc:
        raise NotFound(str(exc)) from None
    if args.view == "history":
        for row in described["timeline"]:
            print(f"{row['state']:<24} {row['status']:<9} {row.get('seconds', ''):>8}  "
                  f"{row.get('error') or ''}")
        return EXIT_OK
    print(operations.to_json({k: v for k, v in described.items() if k != "timeline"}))
    if args.html:
        from animl_local.html_report import embedded_thumbnails, write_html_report
        from animl_local.report import batch_images

        s3 = stage.client("s3")
        images, _ = batch_images(s3, stage.settings, args.batch_id)
        # Embedded: the serving bucket is private, and the page must work mailed or offline.
        write_html_report(args.html, described, images,
                          embedded_thumbnails(s3, stage.settings, images))
    return EXIT_OK
