"""Lambda log lines: one JSON object each, with the batch and group they concern."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from contextvars import copy_context

import pytest

from functions.platform import logs


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonLines())
    tree = logging.getLogger(logs.ROOT)
    tree.addHandler(handler)
    tree.setLevel(logging.INFO)
    yield stream
    tree.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_says_which_batch_and_group_even_from_an_entry_thread(
        json_lines: io.StringIO) -> None:
    logger = logs.get_logger("functions.batch.batch_steps")
    with logs.about(batchId="batch-1", group=3):
        logger.info("entry %s done", "a.jpg")
        thread = threading.Thread(target=copy_context().run,  # as the group's entry threads do
                                  args=(logger.warning, "entry b.jpg slow"))
        thread.start()
        thread.join()
    logger.info("outside")
    first, second, third = lines(json_lines)
    assert first == {"level": "INFO", "logger": "animl_ingest.batch.batch_steps",
                     "message": "entry a.jpg done", "batchId": "batch-1", "group": 3}
    assert second["batchId"] == "batch-1" and second["level"] == "WARNING"
    assert "batchId" not in third


def test_an_exception_travels_inside_the_json(json_lines: io.StringIO) -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        logs.get_logger("functions.x").exception("failed")
    [line] = lines(json_lines)
    assert line["message"] == "failed" and "ValueError: bad" in line["exception"]


def test_on_lambda_the_root_handler_writes_json(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "animl-ingest-dev-ingest_image_group")
        logs.configure_lambda_logging()
        assert isinstance(handler.formatter, logs.JsonLines)
        assert logging.getLogger(logs.ROOT).level == logging.INFO
    finally:
        root.removeHandler(handler)
