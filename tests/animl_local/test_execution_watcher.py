"""The lines `serve` logs per execution event, from what the watcher saw before and now."""

from __future__ import annotations

from animl_local.execution_watcher import execution_events


def test_each_event_of_an_execution_is_one_line() -> None:
    assert execution_events("b", None, ("RUNNING", 0)) == ["execution b started (upload seen)"]
    assert execution_events("b", ("RUNNING", 0), ("FAILED", 0)) == ["execution b ended FAILED"]
    # Seen for the first time already ended (it took less than a poll).
    assert execution_events("b", None, ("SUCCEEDED", 0)) == [
        "execution b started (upload seen)", "execution b ended SUCCEEDED"]


def test_a_redrive_is_told_whether_it_is_seen_running_or_already_ended_again() -> None:
    assert execution_events("b", ("FAILED", 0), ("RUNNING", 1)) == [
        "execution b re-driven (re-drive 1)"]
    assert execution_events("b", ("FAILED", 0), ("FAILED", 1)) == [
        "execution b re-driven (re-drive 1)", "execution b ended FAILED"]
    # moto may not count re-drives in its list: RUNNING again after an end is one too.
    assert execution_events("b", ("FAILED", 1), ("RUNNING", 1)) == [
        "execution b re-driven (re-drive 1)"]
    assert execution_events("b", ("RUNNING", 1), ("RUNNING", 1)) == []
