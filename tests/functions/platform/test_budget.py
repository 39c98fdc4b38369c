"""A byte budget shared by threads: holders wait for room, never for ever, and give it back."""

from __future__ import annotations

import threading

import pytest

from functions.platform.budget import ByteBudget


def hold_in_thread(budget: ByteBudget, wanted: int, release: threading.Event
                   ) -> tuple[threading.Thread, threading.Event]:
    """A thread that holds `wanted` bytes until `release` is set; the event tells it holds."""
    holding = threading.Event()

    def hold() -> None:
        with budget.held(wanted):
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    return thread, holding


def test_a_holder_waits_until_its_bytes_fit_beside_the_others() -> None:
    budget, release_first, release_second = ByteBudget(100), threading.Event(), threading.Event()
    first, first_holds = hold_in_thread(budget, 60, release_first)
    assert first_holds.wait(5)
    second, second_holds = hold_in_thread(budget, 60, release_second)

    assert not second_holds.wait(0.3)  # 60 + 60 > 100
    release_first.set()
    assert second_holds.wait(5)
    release_second.set()
    first.join(5)
    second.join(5)
    assert (budget.held_bytes, budget.peak_bytes) == (0, 60)


def test_holders_that_fit_together_hold_at_once() -> None:
    budget, release = ByteBudget(100), threading.Event()
    holders = [hold_in_thread(budget, 50, release) for _ in range(2)]
    assert all(holding.wait(5) for _, holding in holders)
    release.set()
    for thread, _ in holders:
        thread.join(5)
    assert budget.peak_bytes == 100


def test_more_than_the_whole_budget_is_held_alone_rather_than_refused() -> None:
    budget = ByteBudget(100)
    with budget.held(10**9):
        assert budget.held_bytes == 100


def test_the_bytes_are_given_back_when_the_holder_fails() -> None:
    budget = ByteBudget(100)
    with pytest.raises(RuntimeError), budget.held(80):
        raise RuntimeError("decode failed")
    assert budget.held_bytes == 0
    with budget.held(100):  # would wait for ever had the 80 bytes not come back
        pass
