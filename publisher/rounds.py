"""The loop of a publisher process: one round every interval, through Redis outages.

A metrics or alerts process must outlive Redis going away: a round that finds Redis
unreachable is logged once per outage (not once per round) and the next round simply
tries again; the recovery is logged too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from publisher.health import Health
from shared.broker import BrokerUnavailable

__all__ = ["run_rounds"]


async def run_rounds(
    one_round: Callable[[float], Awaitable[None]],
    interval: float,
    stop: asyncio.Event,
    log: logging.Logger,
    *,
    doing: str,
    health: Health | None = None,
    wake: asyncio.Event | None = None,
) -> None:
    """Call ``one_round(started)`` every ``interval`` seconds until ``stop`` is set.

    ``doing`` names the work in log lines ("publish metrics", "evaluate alerts");
    ``health`` hears of every round and whether it reached Redis; setting ``wake`` starts
    the next round at once.
    """
    loop = asyncio.get_running_loop()
    healthy = True
    while not stop.is_set():
        started = loop.time()
        try:
            await one_round(started)
            if not healthy:
                log.info("redis reachable again; back to work: %s", doing)
            healthy = True
        except BrokerUnavailable as exc:
            if healthy:
                log.warning("cannot %s: %s; retrying every %.1fs", doing, exc, interval)
            healthy = False
        if health is not None:
            health.round_done(healthy)
        delay = max(0.0, interval - (loop.time() - started))
        waits = [asyncio.ensure_future(stop.wait())]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        if wake is not None:
            wake.clear()
