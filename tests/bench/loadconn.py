"""One load client connection as the load loop (:mod:`tests.bench.wsload`) keeps it: as
little as possible per connection, since a process holds tens of thousands."""

from __future__ import annotations

import socket

__all__ = ["CLOSED", "CONNECTING", "HANDSHAKE", "LIVE", "SUBSCRIBING", "LoadConn"]

CONNECTING, HANDSHAKE, SUBSCRIBING, LIVE, CLOSED = range(5)
"""A connection's states, in order: ``state < LIVE`` means it is still being set up."""


class LoadConn:
    """A client: where it connects from and to, its channel, and what it expects next."""

    __slots__ = (
        "addr",
        "channel",
        "deflate",
        "epoch",
        "next_n",
        "sock",
        "source",
        "state",
        "tail",
    )

    def __init__(self, addr: tuple[str, int], source: str, channel: str) -> None:
        self.addr = addr
        self.source = source
        self.channel = channel
        self.sock: socket.socket | None = None
        self.state = CONNECTING
        self.tail = b""
        self.next_n = 1
        self.epoch: str | None = None
        self.deflate = False  # negotiated permessage-deflate
