"""A shutdown step that hangs is abandoned after its bound, so the process still exits
(shared/shutdown.py); one that fails is logged and the next steps still run.

The hanging step is a real coroutine that swallows its cancellation, as an await inside
redis-py can under Python 3.11 when a cancellation meets an expiring timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from shared.shutdown import finish


async def test_a_step_that_ignores_cancellation_is_abandoned_after_its_bound(caplog):
    stopped = asyncio.Event()

    async def stubborn() -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)  # the cancellation is lost
        await stopped.wait()  # and the step goes on waiting (until the test ends it)

    with caplog.at_level(logging.WARNING, logger="relaycast.shutdown"):
        finished = await asyncio.wait_for(finish(stubborn(), "closing the broker", 0.2), 10)
    assert finished is False
    assert "closing the broker did not finish within 0.2s" in caplog.text
    stopped.set()
    await asyncio.sleep(0.05)  # the abandoned step ends before the loop does


async def test_a_failing_step_is_logged_and_the_next_one_runs(caplog):
    ran = []

    async def broken() -> None:
        raise ConnectionResetError("redis went away")

    async def fine() -> None:
        ran.append("fine")

    with caplog.at_level(logging.ERROR, logger="relaycast.shutdown"):
        assert await finish(broken(), "closing the hub") is True
        assert await finish(fine(), "closing the API") is True
    assert ran == ["fine"]
    assert "closing the hub failed: redis went away" in caplog.text


@pytest.mark.parametrize("seconds", [0.5, 5.0])
async def test_a_step_that_finishes_in_time_is_awaited_whole(seconds):
    steps = []

    async def close() -> None:
        await asyncio.sleep(0.05)
        steps.append("closed")

    assert await finish(close(), "closing", seconds) is True
    assert steps == ["closed"]
