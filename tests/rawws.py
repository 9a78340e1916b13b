"""A bare WebSocket client over a plain socket, for tests that must misbehave.

The ``websockets`` client is well-behaved by design: it reads in the background, never
sends a malformed frame and cannot leave its receive buffer small. Tests of slow
readers, oversized or broken frames use this instead. It speaks RFC 6455 framing
directly (client frames masked, as the RFC requires).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import struct

__all__ = ["RawWebSocket"]

TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0


class RawWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

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
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host or f'127.0.0.1:{port}'}\r\n"
                "Upgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{headers}\r\n"
            ).encode()
        )
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
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        mask = os.urandom(4)
        n = len(payload)
        first = (0x80 if fin else 0) | opcode
        if n < 126:
            head = struct.pack("!BB", first, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", first, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    async def send_text(self, text: str) -> None:
        self.send_frame(TEXT, text.encode())
        await self.writer.drain()

    async def read_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; (CLOSE, b"") on EOF.

        ``timeout`` bounds the wait for a frame to start; once it has, the rest is read
        whatever it takes (a timeout mid-frame would lose the stream's framing).
        """
        try:
            async with asyncio.timeout(timeout):
                first, second = await self.reader.readexactly(2)
            n = second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            return first & 0x0F, await self.reader.readexactly(n)
        except asyncio.IncompleteReadError:
            return CLOSE, b""

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
