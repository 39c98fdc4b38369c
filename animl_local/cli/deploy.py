"""A stage on AWS: `deploy` (create or update everything) and `teardown`."""

from __future__ import annotations

import argparse
from typing import Any

from animl_local.aws_stage import Stage
from animl_local.cli.errors import EXIT_OK, UserError


def add_commands(commands: Any) -> None:
    deploy = commands.add_parser("deploy", help="deploy or update a stage on AWS")
    deploy.add_argument("--stage", required=True)
    deploy.set_defaults(command=command_deploy)
    teardown = commands.add_parser("teardown", help="remove a stage from AWS")
    teardown.add_argument("--stage", required=True)
    teardown.add_argument("--yes", action="store_true",
                          help="required for a stage that keeps its data (prod)")
    teardown.set_defaults(command=command_teardown)


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
