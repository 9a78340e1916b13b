"""The fan-out hot path alone, timed in one process: hub, sessions, WebSocket writes.

End-to-end figures on a shared machine swing with whatever else runs (a starved gateway
batches more and looks cheaper per delivery). This scenario times only the gateway's own
work for one message, from :meth:`~gateway.hub.Hub.on_publication` to the last socket
write, with real TCP sockets to clients that are drained outside the timed part, and
keeps the fastest and the median of many rounds: a figure that compares code changes
even when the machine is busy. It runs the gateway's real classes over the memory broker,
on the event loop the gateway runs on (uvloop where it is installed).

Beside the gateway's path it times the floor under it: a bare loop of ``send()`` of the
same frame to the same sockets, which is the kernel's share of every delivery (on
loopback the sender's CPU also runs the receiving side of TCP); and a loop of the event
loop's ``transport.write()`` of that frame to the same connections, which is the floor
plus what the event loop's transport adds.

With ``--compression`` the clients negotiate permessage-deflate: the timed path then
includes compressing each message once, and the floor sends the compressed frame.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from gateway.admission import Security
from gateway.frames import message
from gateway.hub import Hub
from gateway.node import Node
from gateway.transports.websocket import WebSocketTransport
from shared.broker import create_broker
from shared.protocol import Publication
from shared.settings import Settings
from tests.bench import report
from tests.bench.flow import Params
from tests.bench.rig import Rig
from tests.bench.wsload import OFFER
from tests.numbered import payload
from tests.rawws import handshake, text_frame

__all__ = ["hotpath"]

CHANNEL = "bench.hotpath"


class _Discard:
    """A transport whose writes go nowhere."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False


def _event_loop() -> tuple[Any, str]:
    """The loop factory the gateway gets from uvicorn (``loop="auto"``), and its name."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def _time_writes(
    write_all: Callable[[], int], socks: list[socket.socket], rounds: int
) -> dict[str, float]:
    """µs per write of ``write_all`` (which writes one frame to every connection and says
    how many), fastest and median round; the clients read everything between rounds."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        count = write_all()
        times.append((time.perf_counter() - start) / count * 1e6)
        _drain(socks)
    return {"min_us": round(min(times), 3), "median_us": round(statistics.median(times), 3)}


def _time_floor(
    connections: set[WebSocketTransport], socks: list[socket.socket], rounds: int, data: bytes
) -> dict[str, float]:
    """µs per ``send()`` of one message frame from the gateway's side of every connection."""
    # Duplicates of the gateway's descriptors: closing them leaves the connections open.
    raw = [
        socket.socket(fileno=os.dup(conn.transport.get_extra_info("socket").fileno()))
        for conn in connections
        if conn.transport is not None
    ]

    def send_all() -> int:
        for sock in raw:
            sock.send(data)
        return len(raw)

    try:
        return _time_writes(send_all, socks, rounds)
    finally:
        for sock in raw:
            sock.close()


def _time_transport_floor(
    connections: set[WebSocketTransport], socks: list[socket.socket], rounds: int, data: bytes
) -> dict[str, float]:
    """µs per ``transport.write()`` of one message frame to every connection, no Python
    of the gateway's around it."""
    transports = [conn.transport for conn in connections if conn.transport is not None]

    def write_all() -> int:
        for transport in transports:
            transport.write(data)
        return len(transports)

    return _time_writes(write_all, socks, rounds)


def _drain(socks: list[socket.socket]) -> None:
    for sock in socks:
        while True:
            try:
                if len(sock.recv(65536)) < 65536:
                    break
            except BlockingIOError:
                break


async def _until(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("hot path setup did not finish")
        await asyncio.sleep(0.01)


async def _run(clients: int, rounds: int, size: int, compression: bool) -> dict[str, Any]:
    overrides = {"redis_url": "memory://", "mode": "development", "handshake_rate": 0}
    settings = Settings.load(overrides, env={})
    broker = create_broker(settings)
    hub = Hub(broker, settings)
    await broker.start(hub)
    state = SimpleNamespace(connections=set(), tasks=set())
    node = Node(settings, Security(settings))
    node.started(hub)
    app_state = {"node": node}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: WebSocketTransport(None, state, app_state), "127.0.0.1", 0, backlog=4096
    )
    port = server.sockets[0].getsockname()[1]
    socks: list[socket.socket] = []
    subscribe = text_frame(b'{"type":"subscribe","channel":"%s"}' % CHANNEL.encode())
    try:
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            sock.sendall(handshake("127.0.0.1", port, headers=OFFER if compression else ""))
            socks.append(sock)
            if len(socks) % 200 == 0:
                await asyncio.sleep(0)
        await _until(lambda: len(hub.sessions) >= clients)
        _drain(socks)
        for sock in socks:
            sock.sendall(subscribe)
        await _until(
            lambda: (
                CHANNEL in hub.channels
                and len(hub.channels[CHANNEL].subscribers) >= clients
                and all(s.subs[CHANNEL].pending is None for s in hub.sessions)
            )
        )
        await asyncio.sleep(0.1)
        _drain(socks)
        channel = hub.channels[CHANNEL]
        if compression:
            assert all(t.deflate for t in state.connections), "permessage-deflate not negotiated"
        pub = Publication(0, "", payload(0, size, time.time()).decode(), time.time())
        sample = message(CHANNEL, pub, latest=False)
        data = sample.deflated() if compression else sample.ws  # one message frame
        figures: dict[str, Any] = {
            "floor": _time_floor(state.connections, socks, rounds, data),
            "transport_floor": _time_transport_floor(state.connections, socks, rounds, data),
        }
        for label, batch, sockets in (
            ("batch1", 1, True),
            ("batch4", 4, True),
            ("python", 1, False),
        ):
            if not sockets:
                # The same path with every socket write discarded: the Python part alone.
                for transport in list(state.connections):
                    transport.transport = _Discard()
            times = []
            queued = []
            for _ in range(rounds):
                now = time.time()
                offsets = range(channel.offset + 1, channel.offset + 1 + batch)
                pubs = [
                    Publication(n, channel.epoch, payload(n, size, now).decode(), now)
                    for n in offsets
                ]
                start = time.perf_counter()
                for publication in pubs:
                    hub.on_publication(CHANNEL, publication)
                queued.append(time.perf_counter() - start)
                await asyncio.sleep(0)  # the flusher, queued first, runs before we resume
                times.append(time.perf_counter() - start)
                _drain(socks)
            per = [t / (clients * batch) * 1e6 for t in times]
            fan = [t / (clients * batch) * 1e6 for t in queued]
            figures[label] = {
                "min_us": round(min(per), 3),
                "median_us": round(statistics.median(per), 3),
                "fan_out_min_us": round(min(fan), 3),
            }
        return figures
    finally:
        for sock in socks:
            sock.close()
        server.close()
        await hub.close()
        await broker.close()


def hotpath(rig: Rig, params: Params) -> dict[str, Any]:
    """Gateway µs per delivery on the fan-out path, one and four messages per write."""
    if rig.gateway_cpus:
        os.sched_setaffinity(0, rig.gateway_cpus)
    rounds = max(20, int(params.duration * 20))
    factory, loop_name = _event_loop()
    with asyncio.Runner(loop_factory=factory) as runner:
        figures = runner.run(_run(params.clients, rounds, params.size, params.compression))
    one, four, python = figures["batch1"], figures["batch4"], figures["python"]
    floor, transport = figures["floor"], figures["transport_floor"]
    return {
        "scenario": "hotpath",
        "title": f"gateway fan-out path in one process to {params.clients} TCP clients,"
        f" {params.size}-byte messages, {rounds} rounds",
        "params": {
            "clients": params.clients,
            "size": params.size,
            "rounds": rounds,
            "loop": loop_name,
            "compression": params.compression,
        },
        "machine": report.machine(rig.gateway_cpus, rig.load_cpus),
        "hotpath": figures,
        "note": f"µs per delivery, 1 message per write: min {one['min_us']}"
        f" (fan-out into outboxes {one['fan_out_min_us']}) median {one['median_us']};"
        f" 4 per write: min {four['min_us']} median {four['median_us']};"
        f" writes discarded (Python alone): min {python['min_us']};"
        f" bare send() floor: min {floor['min_us']} median {floor['median_us']};"
        f" transport.write() floor: min {transport['min_us']} median {transport['median_us']}",
    }
