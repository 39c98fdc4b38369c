"""A deployed stage as operator commands see it: its settings and an AWS session.

The session's clients use the default credentials and region, and `AWS_ENDPOINT_URL` when set
(a moto server in tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from animl_local.secret_redaction import keep_secret
from functions.platform.bucket_owner import expect_owner
from functions.platform.graphql_client import AnimlApiClient, client_for_stage
from functions.platform.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stage:
    settings: Settings
    session: Any  # boto3 Session
    project_dir: Path = PROJECT_DIR

    @classmethod
    def named(cls, stage: str) -> Stage:
        import boto3

        session = boto3.session.Session()
        region = session.region_name or Settings(stage=stage).region
        return cls(settings=Settings(stage=stage, region=region), session=session)

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
