"""Engine calls run on the event loop only when they are cheap; the rest go to a thread."""

from __future__ import annotations

import threading

import pytest

from recsys_gql.api.services import run_engine


async def test_a_call_estimated_within_the_budget_runs_on_the_event_loop() -> None:
    assert await run_engine(1.0, 0.0004, threading.get_ident) == threading.get_ident()
    assert await run_engine(1.0, 0.001, threading.get_ident) == threading.get_ident()


async def test_a_call_estimated_over_the_budget_runs_in_a_worker_thread() -> None:
    assert await run_engine(1.0, 0.0011, threading.get_ident) != threading.get_ident()


async def test_a_zero_budget_sends_every_call_to_a_thread() -> None:
    assert await run_engine(0.0, 0.0, threading.get_ident) != threading.get_ident()


async def test_arguments_and_errors_pass_through_either_way() -> None:
    for estimate in (0.0, 1.0):
        assert await run_engine(1.0, estimate, divmod, 7, 2) == (3, 1)
        with pytest.raises(ValueError, match="seven"):
            await run_engine(1.0, estimate, int, "seven")
