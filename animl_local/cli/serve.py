"""`serve`: the embedded stage behind a local AWS endpoint until interrupted, so that other
commands (with AWS_ENDPOINT_URL) work on it as on AWS."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from animl_local.cli.errors import EXIT_OK, served_stage_line
from animl_local.secret_redaction import keep_secret


def add_commands(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="keep the embedded stage running behind a local AWS endpoint, so other "
                      "commands (with AWS_ENDPOINT_URL) work on it as on AWS")
    serve.add_argument("--port", type=int, default=5000, help="AWS endpoint port (0: any)")
    serve.add_argument("--verbose", action="store_true",
                       help="also log every HTTP request to the endpoint (by default one line "
                            "per execution started, ended or re-driven)")
    serve.set_defaults(command=command_serve)


def command_serve(args: argparse.Namespace) -> int:
    """Reports executions that end badly to the status-change handler, as EventBridge would."""
    from animl_local.engine import ACCOUNT_ID, EmbeddedStage
    from animl_local.local_run import local_settings
    from animl_local.standin_api import StandinApi, StandinAws

    settings = local_settings()
    # The endpoint's server (werkzeug) logs each request on its own handler: the operator
    # commands poll, so that is several lines a second that say nothing about the batches.
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    api_key = secrets.token_urlsafe(24)
    keep_secret(api_key)
    aws = StandinAws(settings.stage, settings.region, ACCOUNT_ID)
    with tempfile.TemporaryDirectory(prefix="animl-serve-") as scratch, \
            StandinApi(Path(scratch) / "api.sqlite3", api_key, aws=aws) as api, \
            EmbeddedStage(settings, api.url, api_key, server_port=args.port) as stage:
        # The line to paste first, where a user's eye (and a script's readline) lands.
        assert stage.endpoint_url, "a server port was given, so the stage has an endpoint"
        print(served_stage_line(stage.endpoint_url, settings.region), flush=True)
        print(f"stage {settings.stage} served (stand-in API {api.url}): paste the line above "
              "into another shell to operate it (no AWS credentials needed); Ctrl-C stops it",
              flush=True)
        # Until Ctrl-C (130) or SIGTERM (143): main says which, once everything has unwound.
        stage.watcher.watch_forever(on_event=_log_event)
    return EXIT_OK


def _log_event(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", file=sys.stderr, flush=True)
