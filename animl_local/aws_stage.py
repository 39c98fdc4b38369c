"""A deployed stage as operator commands see it: its settings and an AWS session.

The session's clients use the default credentials and region, and `AWS_ENDPOINT_URL` when set
(`animl-ingest serve`, a moto server in tests). An endpoint on this machine needs no credentials
from the user: it accepts any, so the session gets placeholder ones when none are configured.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from animl_local.secret_redaction import keep_secret
from functions.platform.bucket_owner import expect_owner
from functions.platform.graphql_client import AnimlApiClient, client_for_stage
from functions.platform.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class StageNotFound(LookupError):
    """The stage has no IngestBatch state machine where the session looks."""


def local_endpoint() -> str | None:
    """AWS_ENDPOINT_URL when it is a server on this machine (`animl-ingest serve`)."""
    url = os.environ.get("AWS_ENDPOINT_URL")
    return url if url and urlparse(url).hostname in LOOPBACK_HOSTS else None


@dataclass(frozen=True)
class Stage:
    settings: Settings
    session: Any  # boto3 Session
    project_dir: Path = PROJECT_DIR

    @classmethod
    def named(cls, stage: str) -> Stage:
        import boto3

        session = boto3.session.Session()
        if local_endpoint() and session.get_credentials() is None:
            session = boto3.session.Session(aws_access_key_id="local",
                                            aws_secret_access_key="local",
                                            region_name=session.region_name)
        region = session.region_name or Settings(stage=stage).region
        return cls(settings=Settings(stage=stage, region=region), session=session)

    def require_exists(self) -> None:
        """Raise StageNotFound, naming the stage and where it was looked for, unless its
        IngestBatch state machine exists."""
        sfn = self.client("stepfunctions")
        try:
            sfn.describe_state_machine(
                stateMachineArn=self.settings.state_machine_arn(self.account))
        except sfn.exceptions.StateMachineDoesNotExist:
            where = local_endpoint() or f"AWS region {self.settings.region}"
            raise StageNotFound(
                f"stage {self.settings.stage!r} does not exist at {where} (no state machine "
                f"{self.settings.state_machine_name}): deploy it with `animl-ingest deploy "
                f"--stage {self.settings.stage}`, or serve the local stage with `animl-ingest "
                "serve` and use --stage local") from None

    def client(self, name: str) -> Any:
        client = self.session.client(name, region_name=self.settings.region)
        if name == "s3":  # every call naming a stage bucket expects the stage's account
            expect_owner(client, self.settings.buckets, lambda: self.account)
        return client

    @cached_property
    def account(self) -> str:
        """The credentials' account (one STS call per Stage)."""
        return str(self.client("sts").get_caller_identity()["Account"])

    def api(self) -> AnimlApiClient:
        client = client_for_stage(self.client("ssm"), self.client("secretsmanager"),
                                  self.settings.stage, self.settings.api_timeout_seconds)
        keep_secret(client.api_key)  # masked in every later log line of this process
        return client
