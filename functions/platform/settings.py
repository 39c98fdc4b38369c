"""One place for the stage's facts: resource names, limits and the environment they come from.

Lambda handlers build a `Settings` from their environment once and pass it down explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

APP_NAME = "animl-ingest"
STATE_MACHINE_BASENAME = "IngestBatch"


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str = "us-west-2"
    # Largest image accepted before decoding, and the decompression-bomb guard.
    max_image_bytes: int = 100 * 1024 * 1024
    max_image_pixels: int = 100_000_000
    # Pre-batching of the manifest: a Map item holds at most this many entries / bytes.
    group_max_entries: int = 50
    group_max_bytes: int = 128 * 1024 * 1024
    # Inflated bytes a group holds at once (plus one image): entries are read and worked in
    # runs this big, so 50 images of 99 MB need about this much, not 5 GB (Lambda: 3,008 MB).
    group_max_inflated_bytes: int = 512 * 1024 * 1024
    # Entries of a group worked at once (threads: they mostly wait on the API and S3), and the
    # bytes of decoded pixels they hold at once (renditions.render): with the group's
    # inflated bytes, well inside the function's 3,008 MB.
    group_concurrency: int = 16
    decode_budget_bytes: int = 1024 * 1024 * 1024
    # Zip-bomb guards: JPEG and PNG barely compress, so a high ratio is never a real photo.
    max_compression_ratio: int = 100
    max_batch_uncompressed_bytes: int = 200 * 1024**3
    maintenance_mode: bool = False
    api_timeout_seconds: float = 30.0
    # The API client's own retries of a transient failure (5xx, 429, timeouts, lost connections):
    # at most this many attempts per call, waiting a random time up to base * 2^n (at most cap)
    # between them, and never past the invocation's remaining time less the margin (time left
    # to record what was done before Lambda ends the invocation).
    api_retry_attempts: int = 5
    api_retry_base_seconds: float = 0.5
    api_retry_cap_seconds: float = 20.0
    api_deadline_margin_seconds: float = 10.0
    # Processes for the CPU-bound image work; 0 runs it in the handler's thread (as on Lambda,
    # which has no /dev/shm for process pools).
    image_worker_processes: int = 0
    # Per-batch inference resources (names and numbers are a contract with the Animl API).
    inference_visibility_timeout: int = 720
    inference_max_receives: int = 5
    inference_batch_size: int = 10
    inference_idle_polls: int = 10  # consecutive idle polls before teardown (the old alarm)
    inference_max_wait_seconds: int = 24 * 3600
    # Dead-lettered inference messages wait this long for an operator's redriveBatch (SQS's max).
    inference_dlq_retention_seconds: int = 14 * 24 * 3600
    sweep_max_age_seconds: int = 24 * 3600

    @property
    def ingestion_bucket(self) -> str:
        return f"animl-images-ingestion-{self.stage}"

    @property
    def serving_bucket(self) -> str:
        return f"animl-images-serving-{self.stage}"

    @property
    def dead_letter_bucket(self) -> str:
        return f"animl-images-dead-letter-{self.stage}"

    @property
    def parking_lot_bucket(self) -> str:
        return f"animl-images-parkinglot-{self.stage}"

    @property
    def batch_work_bucket(self) -> str:
        """Manifests, per-group outcomes and reports of batches (ours, not the API's)."""
        return f"animl-ingest-batches-{self.stage}"

    @property
    def buckets(self) -> tuple[str, ...]:
        return (
            self.ingestion_bucket,
            self.serving_bucket,
            self.dead_letter_bucket,
            self.parking_lot_bucket,
            self.batch_work_bucket,
        )

    @property
    def api_url_parameter(self) -> str:
        return f"/api/url-{self.stage}"

    @property
    def api_key_secret(self) -> str:
        return f"api-key-{self.stage}"

    @property
    def state_machine_name(self) -> str:
        return f"{APP_NAME}-{self.stage}-{STATE_MACHINE_BASENAME}"

    def function_name(self, function: str) -> str:
        """What Chalice deploys the app's `function` as: `animl-ingest-<stage>-<function>`."""
        return f"{APP_NAME}-{self.stage}-{function}"

    def inference_queue_name(self, batch_id: str) -> str:
        return f"{APP_NAME}-{self.stage}-{batch_id}"

    def inference_dlq_name(self, batch_id: str) -> str:
        return f"{self.inference_queue_name(batch_id)}-dlq"

    @property
    def inference_queue_prefix(self) -> str:
        return self.inference_queue_name("batch-")

    def batch_id_of_queue(self, queue_name: str) -> str:
        return queue_name.removeprefix(self.inference_queue_name("")).removesuffix("-dlq")

    @property
    def inference_function_name(self) -> str:
        return f"animl-api-{self.stage}-batchinference"

    @property
    def ingest_delete_function_name(self) -> str:
        """The Lambda the API's stopBatch invokes (its role may invoke only this name)."""
        return f"IngestDelete-{self.stage}"

    def state_machine_arn(self, account_id: str) -> str:
        return f"arn:aws:states:{self.region}:{account_id}:stateMachine:{self.state_machine_name}"

    def execution_arn(self, account_id: str, name: str) -> str:
        """A batch's execution is named after the batch (re-drives: `<batch>-redrive-<n>`, a
        later upload under the same batch id: `<batch>-upload-<its ETag>`)."""
        return execution_arn_of(self.state_machine_arn(account_id), name)

    def to_environment(self) -> dict[str, str]:
        """The environment variables `from_environment` reads back to these settings: one per
        field, named after it (`max_image_bytes` -> `MAX_IMAGE_BYTES`; the region is AWS's)."""
        values: dict[str, str] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            values[_environment_name(item.name)] = text
        return values

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment; a field whose variable is unset keeps its default."""
        env = os.environ if environ is None else environ
        defaults = cls(stage="dev")
        values: dict[str, Any] = {}
        for item in fields(cls):
            default = getattr(defaults, item.name)
            raw = env.get(_environment_name(item.name))
            if raw is None and item.name == "region":
                raw = env.get("AWS_DEFAULT_REGION")
            values[item.name] = default if raw is None else _parsed(raw, type(default))
        return cls(**values)


def execution_arn_of(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def _environment_name(field_name: str) -> str:
    # Lambda sets AWS_REGION itself; every other field is ours.
    return "AWS_REGION" if field_name == "region" else field_name.upper()


def _parsed(raw: str, kind: type) -> Any:
    if kind is bool:
        return raw.strip().lower() == "true"
    return kind(raw)
