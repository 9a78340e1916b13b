"""A demo publisher for ``relaycast up``: a ticking counter and simulated task progress."""

from __future__ import annotations

import asyncio
import logging
import random

from publisher.publish import AsyncPublisher
from shared.broker import BrokerUnavailable
from shared.settings import Settings

__all__ = ["run_demo"]

log = logging.getLogger("relaycast.demo")


async def run_demo(settings: Settings, interval: float = 1.0) -> None:
    """Publish ``demo.ticks`` every ``interval`` and a task's progress on ``tasks.demo``."""
    async with AsyncPublisher(settings=settings) as publisher:
        tick = 0
        percent = 0
        while True:
            tick += 1
            percent = 0 if percent >= 100 else min(100, percent + random.randint(3, 15))
            try:
                await publisher.publish("demo.ticks", {"tick": tick})
                await publisher.publish("tasks.demo", {"task": "demo", "percent": percent})
            except BrokerUnavailable as exc:
                log.warning("publish failed: %s", exc)
            await asyncio.sleep(interval)
