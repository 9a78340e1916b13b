"""Connection rebalancing: old connections are asked to reconnect, so new gateways get load.

After a scale-out, clients stay on the gateways they reached first, and a new gateway
only sees clients that connect from then on. With ``max_connection_age`` set, each
connection gets an age limit drawn from ``[age x (1 - jitter), age]``; past it, it is
closed with 4002 (``CONNECTION_AGED``). The client reconnects through the load balancer,
which (least connections) lands it on the emptiest gateway, and resumes from its last
offset, so nothing is lost. The jitter spreads the reconnects of clients that connected
together instead of sending them back in one instant.

Ages are counted from the first check that sees a connection, so they are exact to one
check interval: a tenth of the age, at most one second.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from gateway.hub import Hub
from gateway.session import Session
from shared.protocol import CloseCode

__all__ = ["Rebalancer", "run_rebalancer"]

log = logging.getLogger("relaycast.rebalance")


class Rebalancer:
    """Closes connections past their age limit; :meth:`check` does one round, no I/O."""

    def __init__(
        self,
        hub: Hub,
        max_age: float,
        jitter: float = 0.2,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if max_age <= 0 or not 0 <= jitter < 1:
            raise ValueError("max_age must be > 0 and jitter in [0, 1)")
        self.hub = hub
        self.max_age = max_age
        self.jitter = jitter
        self.interval = min(1.0, max_age / 10)
        self._rng = rng
        self._deadlines: dict[Session, float] = {}

    def check(self, now: float) -> int:
        """One round at time ``now``: note new connections, close expired ones.

        Returns how many were asked to reconnect. Does nothing while the gateway
        drains: the drain closes everyone anyway.
        """
        if self.hub.draining:
            return 0
        sessions = self.hub.sessions
        deadlines = self._deadlines
        for gone in [s for s in deadlines if s not in sessions]:
            del deadlines[gone]
        closed = 0
        for session in list(sessions):
            deadline = deadlines.get(session)
            if deadline is None:
                deadlines[session] = now + self.max_age * (1 - self.jitter * self._rng())
            elif now >= deadline and session.close_code is None:
                session.close(CloseCode.CONNECTION_AGED, "connection aged; reconnect")
                closed += 1
        return closed

    async def run(self) -> None:
        """Check every :attr:`interval` seconds until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            closed = self.check(loop.time())
            if closed:
                log.debug("asked %d aged connections to reconnect", closed)


async def run_rebalancer(hub: Hub) -> None:
    """Run a :class:`Rebalancer` for ``hub`` if ``max_connection_age`` is set; else return."""
    settings = hub.settings
    if settings.max_connection_age > 0:
        age, jitter = settings.max_connection_age, settings.max_connection_age_jitter
        await Rebalancer(hub, age, jitter).run()
