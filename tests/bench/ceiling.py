"""The load generator's own ceiling: its clients against a server that costs nothing.

A blaster process on the gateway's CPU accepts the clients, answers the handshake and
the subscribe, then writes the same numbered ``message`` frames a gateway would, as
fast as the sockets take them. Whatever rate the load processes reach here is the most
any gateway measurement with the same load processes can show; their CPU share says
whether they or the blaster were the limit.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import time
from typing import Any

from tests.bench import report
from tests.bench.flow import Params, connect, merge
from tests.bench.rig import Rig, _mp
from tests.numbered import payload

__all__ = ["ceiling"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"


def _frame(n: int, size: int) -> bytes:
    data = payload(n, size, time.time())
    body = b'{"type":"message","channel":"ceiling","offset":%d,"data":%s}' % (n, data)
    length = len(body)
    head = bytes((0x81, length)) if length < 126 else bytes((0x81, 126)) + length.to_bytes(2)
    return head + body


def _accept(listener: socket.socket) -> socket.socket:
    sock, _ = listener.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    key = next(
        line.split(b":", 1)[1].strip()
        for line in buf.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    sock.recv(4096)  # the subscribe frame
    body = b'{"type":"subscribed","channel":"ceiling","offset":0,"epoch":"e"}'
    sock.sendall(bytes((0x81, len(body))) + body)
    return sock


def _blast(clients: int, duration: float, size: int, cpus: list[int] | None, pipe: Any) -> None:
    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cpus)
    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    pipe.send(listener.getsockname()[1])
    socks = [_accept(listener) for _ in range(clients)]
    pipe.recv()  # go
    end = time.monotonic() + duration
    n = 0
    while time.monotonic() < end:
        n += 1
        frame = _frame(n, size)
        for sock in socks:
            sock.sendall(frame)
    pipe.send(n)
    pipe.recv()
    for sock in socks:
        sock.close()
    listener.close()


def ceiling(rig: Rig, params: Params) -> dict[str, Any]:
    """Deliveries per second the load processes absorb from a zero-cost server."""
    result: dict[str, Any] = {
        "scenario": "ceiling",
        "title": f"{params.clients} clients of the load generator against a blaster that writes"
        f" {params.size}-byte messages as fast as sockets take them, {params.duration:g} s",
        "params": {k: v for k, v in vars(params).items() if k != "rates"},
        "machine": report.machine(rig.gateway_cpus, rig.load_cpus),
    }
    parent, child = _mp.Pipe()
    proc = _mp.Process(
        target=_blast,
        args=(params.clients, params.duration, params.size, rig.gateway_cpus, child),
        daemon=True,
    )
    proc.start()
    rig.publishers.append(proc)
    port = parent.recv()
    group = rig.load(params.clients, ["ceiling"], resume=False, urls=[("127.0.0.1", port)])
    connect(rig, group, result)
    group.ask("reset")
    start_wall, start = time.time(), time.monotonic()
    parent.send("go")
    last = parent.recv()
    stats = merge(group.ask("collect", {"last": last, "timeout": 30}))
    wall = time.monotonic() - start
    parent.send("done")
    received = stats["received"]
    span = max(stats["last_recv"] - start_wall, 1e-9)
    load_share = stats["load_cpu"] / wall / max(1, len(rig.load_cpus or [0]))
    result.update(
        {
            "deliveries": received,
            "deliveries_per_s": round(received / span),
            "lost": stats["lost"],
            "duplicates": stats["duplicates"],
            "missing": stats["missing"],
            "load_cpu_pct": round(100 * stats["load_cpu"] / wall, 1),
            "load_us_per_delivery": round(stats["load_cpu"] / max(received, 1) * 1e6, 3),
            "ceiling_per_s": round(received / span / max(load_share, 1e-9)),
        }
    )
    return result
