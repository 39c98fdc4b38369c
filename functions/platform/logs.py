"""One logger tree, `animl_ingest`: every module logs under it, and on Lambda its lines are JSON
with the batch (and group) they concern, so CloudWatch Logs Insights can filter by batch."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

ROOT = "animl_ingest"
# What the current invocation is about: {"batchId": ..., "group": ...}. A ContextVar, so the
# group's entry threads (which copy their context) log under the same batch.
_about: ContextVar[dict[str, Any] | None] = ContextVar("animl_log_about", default=None)


def get_logger(module: str) -> logging.Logger:
    """The module's logger in the tree (`functions.batch.uploads`: `animl_ingest.batch.uploads`)."""
    return logging.getLogger(f"{ROOT}.{module.removeprefix('functions.')}")


@contextmanager
def about(**fields: Any) -> Iterator[None]:
    """Log lines inside carry these fields (the batch id, the group)."""
    token = _about.set({**(_about.get() or {}),
                        **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _about.reset(token)


class JsonLines(logging.Formatter):
    """One JSON object a line: level, logger, message, what the invocation is about, and the
    exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"level": record.levelname, "logger": record.name,
                                "message": record.getMessage(), **(_about.get() or {})}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_lambda_logging() -> None:
    """The tree at INFO; on Lambda (its runtime owns the root handler), lines as JSON.
    Called once, when the handlers' module is imported: once per container."""
    logging.getLogger(ROOT).setLevel(logging.INFO)
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLines())
