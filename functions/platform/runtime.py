"""What a Lambda container keeps between invocations: settings, AWS clients and the API client.

Module state lives as long as the container, so the runtime is built on first use and reused by
every later invocation in it: one boto3 session and one client per service, one API client with
one pooled HTTP session. The API's URL and key are read once, again after
`API_CREDENTIALS_TTL_SECONDS`, and at once when the API answers 401/403 (a rotated key). With 200
groups in flight that is 200 containers' reads, not a burst of two per invocation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import boto3
from botocore.config import Config

from functions.platform.bucket_owner import expect_owner, invocation_account
from functions.platform.budget import ByteBudget
from functions.platform.graphql_client import (
    AnimlApiClient,
    RemainingSeconds,
    RetryPolicy,
    read_api_credentials,
)
from functions.platform.settings import Settings

API_CREDENTIALS_TTL_SECONDS = 900.0
# botocore's standard retry mode: bounded exponential backoff with jitter for each AWS call,
# on throttling (SlowDown), 5xx and transient errors (RequestTimeout); `max_attempts` counts
# retries, so a call is tried 6 times in all (the mode's default is 3), which at a 10% fault
# rate leaves one call in a million failed (benchmarks/fault_soak.py). Connections enough for
# a group's concurrent entries.
AWS_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5},
                           max_pool_connections=32)


class Runtime:
    """The container's clients, each built lazily on first use (clients are thread-safe once
    built; building them from one session is not, hence the lock)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._session: Any = boto3.session.Session()  # clients of any service, by name
        self._clients: dict[str, Any] = {}
        self._api: AnimlApiClient | None = None
        self._api_read_at = 0.0
        self._lock = threading.Lock()
        # The decoded pixels of every invocation's group threads in this container.
        self.decode_budget = ByteBudget(settings.decode_budget_bytes)

    def client(self, name: str) -> Any:
        with self._lock:
            if name not in self._clients:
                self._clients[name] = self._session.client(
                    name, region_name=self.settings.region, config=AWS_CLIENT_CONFIG)
                if name == "s3":  # every call naming a stage bucket expects our account's
                    expect_owner(self._clients[name], self.settings.buckets, invocation_account)
            return self._clients[name]

    def api(self, remaining_seconds: RemainingSeconds | None = None) -> AnimlApiClient:
        """The API client; its URL and key re-read once they are older than the TTL. Given the
        invocation's remaining time, its retries stop in time (see `AnimlApiClient.within`)."""
        return self._container_api().within(remaining_seconds)

    def _container_api(self) -> AnimlApiClient:
        ssm, secrets = self.client("ssm"), self.client("secretsmanager")
        with self._lock:
            if self._api is None:
                self._api = AnimlApiClient(
                    *read_api_credentials(ssm, secrets, self.settings.stage),
                    timeout=self.settings.api_timeout_seconds,
                    retry=RetryPolicy.from_settings(self.settings),
                    reread_credentials=lambda: read_api_credentials(ssm, secrets,
                                                                    self.settings.stage))
                self._api_read_at = self._clock()
            elif self._clock() - self._api_read_at > API_CREDENTIALS_TTL_SECONDS:
                self._api.refresh_credentials()
                self._api_read_at = self._clock()
            return self._api


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> Runtime:
    """This container's runtime, built from its environment on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(Settings.from_environment())
        return _runtime


def reset_runtime() -> None:
    """Forget the runtime. Never needed on Lambda; the local engine runs many stages (each with
    its own endpoint and API) in one process, and starts each afresh."""
    global _runtime
    with _runtime_lock:
        _runtime = None


# Where the CPU-bound image work runs. On Lambda: nowhere else, the handler's own thread (no
# /dev/shm for a process pool). The local engine hands in a process pool so that a run uses every
# core; shipped code builds none.
_image_pool: Executor | None = None


def use_image_pool(pool: Executor | None) -> None:
    global _image_pool
    _image_pool = pool


def image_pool() -> Executor | None:
    return _image_pool


def remaining_seconds_of(context: Any) -> RemainingSeconds:
    """The invocation's remaining time in seconds, from the Lambda context's clock."""
    return lambda: context.get_remaining_time_in_millis() / 1000


def account_of(context: Any) -> str:
    """The AWS account, from the invocation's own function ARN (no STS call)."""
    return str(context.invoked_function_arn).split(":")[4]
