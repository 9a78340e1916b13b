"""What the gateway's garbage-collector settings rely on: a closed connection is freed by
reference counting alone, so freezing what lives (gateway/collector.py) leaks nothing.

The gateway's real WebSocket protocol class over real TCP sockets, in this process so
that the test can look at the collector's objects.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import time
from collections import Counter
from types import SimpleNamespace

from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from gateway import collector
from gateway.admission import Security
from gateway.hub import Hub
from gateway.node import Node
from gateway.outbox import Outbox
from gateway.session import Session
from gateway.transports.websocket import WebSocketTransport
from shared.broker import create_broker
from shared.settings import Settings
from tests.rawws import handshake, text_frame

CONNECTION_TYPES = (WebSocketTransport, Session, Outbox, ServerProtocol, StreamReader)
"""What each connection holds (besides lists, dicts and the like)."""


def _census() -> Counter[str]:
    return Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, CONNECTION_TYPES))


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_closed_connections_leave_nothing_for_the_collector():
    settings = Settings.load({"redis_url": "memory://", "mode": "development"}, env={})
    broker = create_broker(settings)
    hub = Hub(broker, settings)
    await broker.start(hub)
    node = Node(settings, Security(settings))
    node.started(hub)
    state = SimpleNamespace(connections=set(), tasks=set())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: WebSocketTransport(None, state, {"node": node}), "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    socks = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            sock.sendall(handshake("127.0.0.1", port))
            socks.append(sock)
        await _until(lambda: len(hub.sessions) == 20)
        for n, sock in enumerate(socks):
            sock.sendall(text_frame(b'{"type":"subscribe","channel":"metrics.c%d"}' % (n % 3)))
            if n % 2:
                sock.sendall(b"\x81\x85garbage")  # a masked frame cut short: parser mid-frame
        await _until(lambda: sum(len(c.subscribers) for c in hub.channels.values()) == 20)
        # Open and idle, each holds its transport, session and outbox; the handshake's
        # sans-I/O protocol and its stream reader went once the handshake was answered.
        assert _census() == Counter({"WebSocketTransport": 20, "Session": 20, "Outbox": 20})
        for sock in socks:
            sock.close()
        await _until(lambda: not hub.sessions and not state.connections and not state.tasks)
        await asyncio.sleep(0.1)
        assert _census() == Counter()  # gone without a collection
    finally:
        gc.enable()
        server.close()
        await hub.close()
        await broker.close()


def test_settle_freezes_what_start_up_made_and_then_what_survives():
    before = gc.get_threshold()
    try:
        collector.settle()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD
        kept = [[n] for n in range(1000)]  # noqa: F841 - alive through the collection
        gc.collect(1)
        assert gc.get_freeze_count() >= frozen + 1000
    finally:
        gc.callbacks.remove(collector._freeze_survivors)
        gc.unfreeze()
        gc.set_threshold(*before)
