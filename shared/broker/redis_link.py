"""One Redis pub/sub connection, read with hiredis, with nothing hidden.

redis-py's ``PubSub`` reconnects and resubscribes by itself, which hides exactly the
events a gateway must see (a dropped link means lost messages to fill from history).
:class:`PubSubLink` is a plain ``asyncio.Protocol``: it parses replies as bytes arrive
and hands each to a callback synchronously, never awaiting a consumer; when the socket
closes, :attr:`PubSubLink.closed` completes and the owner decides what happens next.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable
from typing import Any, cast

import hiredis
from redis.connection import parse_url

__all__ = ["PubSubLink", "Reply", "encode_command", "open_link"]

log = logging.getLogger("relaycast.broker")

Reply = Any
"""A parsed RESP reply: bytes, int, list of replies, or ``hiredis.ReplyError``."""


def encode_command(*args: bytes | str | int) -> bytes:
    """Encode one Redis command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class PubSubLink(asyncio.Protocol):
    """A connected pub/sub socket; ``on_reply`` is called for every reply, in order."""

    def __init__(self, on_reply: Callable[[Reply], None]) -> None:
        self._on_reply = on_reply
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for opt, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3)):
                if hasattr(socket, opt):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        gets = self._reader.gets
        try:
            while (reply := gets()) is not False:
                self._on_reply(reply)
        except hiredis.ProtocolError as exc:
            log.error("redis pub/sub: unparsable reply (%s); dropping the connection", exc)
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self.closed.done():
            self.closed.set_result(exc)

    def deliver_to(self, on_reply: Callable[[Reply], None]) -> None:
        """Hand every later reply to ``on_reply`` instead (its owner, once it has checked
        the replies to the link's setup)."""
        self._on_reply = on_reply

    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, *args: bytes | str | int) -> None:
        """Queue one command; a closed link ignores it (its owner is reconnecting)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(encode_command(*args))

    def abort(self) -> None:
        """Drop the connection at once; :attr:`closed` completes."""
        if self._transport is not None:
            self._transport.abort()


async def open_link(url: str, on_reply: Callable[[Reply], None], timeout: float) -> PubSubLink:
    """Connect to the Redis at ``url`` (``redis://``, ``rediss://`` or ``unix://``) and log in.

    Raises:
        OSError, TimeoutError: the server cannot be reached in ``timeout`` seconds.
    """
    opts = parse_url(url)  # type: ignore[no-untyped-call]
    loop = asyncio.get_running_loop()

    def factory() -> PubSubLink:
        return PubSubLink(on_reply)

    link: PubSubLink
    async with asyncio.timeout(timeout):
        if "path" in opts:
            _, link = await loop.create_unix_connection(factory, opts["path"])
        else:
            ctx = ssl.create_default_context() if url.startswith("rediss://") else None
            _, link = await loop.create_connection(
                factory, opts.get("host", "127.0.0.1"), int(opts.get("port", 6379)), ssl=ctx
            )
    password = opts.get("password")
    if password:
        username = opts.get("username")
        link.send("AUTH", *([username] if username else []), password)
    return link
