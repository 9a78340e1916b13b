"""Raw WebSocket for the tests and the bench: the bytes, and a bare client over them.

The ``websockets`` client is well-behaved by design: it reads in the background, never
sends a malformed frame and cannot leave its receive buffer small. Tests of slow
readers, oversized or broken frames use :class:`RawWebSocket` instead, and the bench's
load processes (``tests/bench/wsload.py``) build their bytes with the functions here.
It speaks RFC 6455 framing directly: client frames are masked, as the RFC requires.
The bench masks with an all-zero key, so a payload goes out as is (the RFC requires a
mask, not a random one, of a server to check).

Inbound data the bench searches with regular expressions rather than splitting it into
frames: the bench publisher writes payloads as ``{"t":<time>,"n":<number>,"p":"..."}``,
and :data:`MESSAGE` finds every message frame's publish time and number in a read with
one C-level scan.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import socket
import struct

__all__ = [
    "BINARY",
    "CLOSE",
    "CONT",
    "ERROR",
    "MESSAGE",
    "PING",
    "PING_JSON",
    "PONG",
    "PONG_FRAME",
    "SUBSCRIBED",
    "TEXT",
    "ZERO_MASK",
    "RawWebSocket",
    "close_code",
    "frame",
    "handshake",
    "subscribe_frame",
    "text_frame",
]

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
ZERO_MASK = b"\x00\x00\x00\x00"

MESSAGE = re.compile(rb'"data":\{"t":([0-9.]+),"n":(\d+),"p"')
"""A message frame's head up to its payload's padding: groups publish time and number."""
SUBSCRIBED = re.compile(rb'\{"type":"subscribed","channel":"[^"]*","offset":(\d+),"epoch":"(\w*)"')
ERROR = re.compile(rb'\{"type":"error","code":"(\w+)"')
PING_JSON = b'{"type":"ping"'
"""The start of a gateway ping frame's JSON (the protocol's heartbeat, not opcode PING)."""


def handshake(
    host: str, port: int, path: str = "/ws", headers: str = "", authority: str | None = None
) -> bytes:
    """The HTTP upgrade request; ``headers`` are extra lines, each ending in CRLF, and
    ``authority`` is the ``Host`` header (default ``host:port``)."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {authority or f'{host}:{port}'}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
    ).encode()


def frame(
    opcode: int, payload: bytes, fin: bool = True, mask: bytes | None = None, rsv1: bool = False
) -> bytes:
    """A client frame, masked with ``mask`` (four bytes; a random key when None); ``rsv1``
    marks a compressed message (permessage-deflate)."""
    mask = os.urandom(4) if mask is None else mask
    n = len(payload)
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    if n < 126:
        head = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, n)
    if mask != ZERO_MASK:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + payload


def text_frame(payload: bytes) -> bytes:
    """A text frame with an all-zero mask key (the payload goes out as is)."""
    return frame(TEXT, payload, mask=ZERO_MASK)


PONG_FRAME = text_frame(b'{"type":"pong"}')
"""The protocol's answer to a gateway ping."""


def subscribe_frame(channel: str, offset: int | None, epoch: str | None) -> bytes:
    """A subscribe, with ``since: {offset, epoch}`` when ``epoch`` is given."""
    since = "" if epoch is None else f',"since":{{"offset":{offset or 0},"epoch":"{epoch}"}}'
    return text_frame(f'{{"type":"subscribe","channel":"{channel}"{since}}}'.encode())


def close_code(tail: bytes) -> int | None:
    """The code of a close frame that ends ``tail`` exactly, if one does."""
    start = max(0, len(tail) - 130)
    i = tail.rfind(b"\x88", start)
    while i >= 0:
        if i + 4 <= len(tail) and tail[i + 1] == len(tail) - i - 2:
            return int.from_bytes(tail[i + 2 : i + 4], "big")
        i = tail.rfind(b"\x88", start, i)
    return None


class RawWebSocket:
    """One upgraded connection on asyncio streams; frames in, frames out, nothing else."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes = b""
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.head = head
        """The server's handshake response, status line and headers."""

    @classmethod
    async def connect(
        cls,
        port: int,
        path: str = "/ws",
        rcvbuf: int | None = None,
        headers: str = "",
        host: str | None = None,
    ) -> RawWebSocket:
        """Open and upgrade; with ``rcvbuf``, the socket's receive buffer is that small;
        ``host`` is the ``Host`` header (default ``127.0.0.1:port``)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        except BaseException:
            sock.close()
            raise
        # A small limit: the reader stops taking bytes off the socket once 128 KiB wait unread.
        reader, writer = await asyncio.open_connection(sock=sock, limit=65536)
        writer.write(handshake("127.0.0.1", port, path, headers, authority=host))
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            status = int(head.split(b" ", 2)[1])
            if status != 101:
                raise ConnectionRefusedError(f"handshake answered {status}")
        except BaseException:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            raise
        return cls(reader, writer, head)

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> None:
        self.writer.write(frame(opcode, payload, fin, rsv1=rsv1))

    async def send_text(self, text: str) -> None:
        self.send_frame(TEXT, text.encode())
        await self.writer.drain()

    async def read_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; (CLOSE, b"") on EOF.

        ``timeout`` bounds the wait for a frame to start; once it has, the rest is read
        whatever it takes (a timeout mid-frame would lose the stream's framing).
        """
        first, payload, _ = await self.read_wire_frame(timeout)
        return first & 0x0F, payload

    async def read_wire_frame(self, timeout: float = 10.0) -> tuple[int, bytes, int]:
        """The next server frame as (first byte: FIN, RSV1-3 and opcode; payload; bytes it
        took on the wire); (CLOSE, b"", 0) on EOF."""
        try:
            async with asyncio.timeout(timeout):
                first, second = await self.reader.readexactly(2)
            n, size = second & 0x7F, 2
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                size += 2
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                size += 8
            return first, await self.reader.readexactly(n), size + n
        except asyncio.IncompleteReadError:
            return CLOSE, b"", 0

    async def read_until_close(self, timeout: float = 30.0) -> tuple[int, int]:
        """Read everything up to the close frame: (close code, data frames read before it).

        The close code is 1006 when the connection ended without a close frame.
        """
        frames = 0
        async with asyncio.timeout(timeout):
            while True:
                opcode, payload = await self.read_frame(timeout)
                if opcode == CLOSE:
                    return (struct.unpack("!H", payload[:2])[0] if payload else 1006), frames
                frames += 1

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()
