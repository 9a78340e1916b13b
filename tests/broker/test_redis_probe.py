"""The probe watchdog drops a silent link, but never judges from a late event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time

from shared.broker.redis_probe import Probe, Verdict, watch


def test_a_probe_in_flight_is_waited_for_then_declared_dead():
    probe = Probe()
    assert probe.check(0.0, timeout=2.0) is Verdict.SEND
    assert probe.sent == 1
    assert probe.check(1.0, timeout=2.0) is Verdict.WAIT
    assert probe.check(2.5, timeout=2.0) is Verdict.DEAD


def test_a_probe_seen_back_lets_the_next_one_go():
    probe = Probe()
    probe.check(0.0, timeout=2.0)
    probe.saw(1)
    assert probe.check(5.0, timeout=2.0) is Verdict.SEND
    assert probe.sent == 2


def test_forgiving_restarts_the_clock_instead_of_judging():
    probe = Probe()
    probe.check(0.0, timeout=2.0)
    probe.forgive()  # the loop was late: the probe may be unread in a socket buffer
    assert probe.check(10.0, timeout=2.0) is Verdict.SEND


async def test_a_round_that_starts_late_forgives_instead_of_ticking():
    ticks: list[float] = []
    forgiven: list[bool] = []

    async def tick(now: float) -> None:
        ticks.append(now)

    task = asyncio.create_task(watch(0.05, tick, lambda: forgiven.append(True)))
    await asyncio.sleep(0.12)
    assert ticks and not forgiven
    time.sleep(0.3)  # the event loop is blocked: an overloaded gateway
    before = len(ticks)
    await asyncio.sleep(0.01)
    assert forgiven == [True] and len(ticks) == before  # that round judged nothing
    await asyncio.sleep(0.12)
    assert len(ticks) > before  # and the rounds after it tick again
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
