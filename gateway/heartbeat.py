"""Heartbeats: the gateway's clock for every connection.

Each ``heartbeat_interval`` the gateway pings every session, closes those that sent
nothing for ``heartbeat_timeout`` (4000), and checks each one's credentials (token
expiry 4003, anonymous past the deadline 4501: :meth:`Session.check_credentials`). The
sessions hold no clock: this is where time is read and handed to them.

A round that starts late (an overloaded loop) pings but judges no one: inbound frames
may be sitting unread in socket buffers, and that is not the client's fault.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

from gateway.frames import OutFrame, control
from gateway.hub import Hub
from gateway.session import Session, State
from shared.protocol import CloseCode, Ping

__all__ = ["beat", "run_heartbeat"]

PING = control(Ping())
"""The server ping, encoded once."""


def beat(
    sessions: Iterable[Session], now: float, wall: float, timeout: float, judge: bool = True
) -> None:
    """One round at ``now`` (the transports' clock) and Unix time ``wall``: credentials,
    then the silence check (only when ``judge``), else a ping."""
    ping: OutFrame = PING
    for session in sessions:
        if session.state is State.CLOSED:
            continue  # closing already; the hub detaches it soon
        session.check_credentials(wall, now)
        if session.close_code is not None:
            continue  # its token expired, or it stayed anonymous too long
        if judge and now - session.last_seen > timeout:
            session.close(CloseCode.HEARTBEAT_TIMEOUT, "no frame within heartbeat timeout")
        else:
            session.send(ping)


async def run_heartbeat(hub: Hub) -> None:
    """Beat for every session of ``hub`` each interval, until cancelled."""
    interval = hub.settings.heartbeat_interval
    timeout = hub.settings.heartbeat_timeout
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        judge = now - due < interval / 2
        due = now + interval
        beat(list(hub.sessions), now, time.time(), timeout, judge)
