"""The local run's own behaviour, apart from whole runs (test_cli, test_signals)."""

from __future__ import annotations

import logging

import pytest

from animl_local.cli.main import Terminated
from animl_local.local_run import _quiet_if_interrupted

STANDIN_LOG = logging.getLogger("animl_local.standin_api")


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Terminated])
def test_an_interruption_quiets_the_standin_apis_requests_in_flight(
        stop: type[BaseException]) -> None:
    """Ctrl-C and SIGTERM alike: the stand-in's requests still in flight fail against a store
    that closes as the run unwinds, and their errors are not news to the user who stopped it."""
    level = STANDIN_LOG.level
    try:
        STANDIN_LOG.setLevel(logging.NOTSET)
        with pytest.raises(stop), _quiet_if_interrupted():
            raise stop()
        assert not logging.getLogger("animl_local.standin_api.server").isEnabledFor(
            logging.ERROR)
    finally:
        STANDIN_LOG.setLevel(level)


def test_an_error_of_the_run_still_reaches_the_log() -> None:
    level = STANDIN_LOG.level
    try:
        STANDIN_LOG.setLevel(logging.NOTSET)
        with pytest.raises(RuntimeError), _quiet_if_interrupted():
            raise RuntimeError("the stage failed")
        assert logging.getLogger("animl_local.standin_api.server").isEnabledFor(logging.ERROR)
    finally:
        STANDIN_LOG.setLevel(level)
