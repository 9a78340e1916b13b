"""Real sinks for the notification tests: an HTTP server that records what it is sent (or
answers with an error, or never answers), and an SMTP server (aiosmtpd) that keeps mail."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from shared.localredis import free_port

__all__ = ["HookServer", "Mailbox", "hook_server", "mailbox"]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookServer:
    """Answers ``POST /ok`` 200, ``/fail`` 500, ``/gone`` 404, and ``/hang`` never."""

    port: int
    received: list[Received] = field(default_factory=list)
    hanging: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split()[1]
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(path, headers, body))
            self.arrived.set()
            if path == "/hang":
                self.hanging += 1
                await asyncio.sleep(3600)
            status = {"/ok": "200 OK", "/fail": "500 Oops", "/gone": "404 Gone"}[path.split("?")[0]]
            writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def wait_for(self, path: str, count: int = 1, timeout: float = 20) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.on(path)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.on(path)


@contextlib.asynccontextmanager
async def hook_server() -> AsyncIterator[HookServer]:
    hooks = HookServer(free_port())
    server = await asyncio.start_server(hooks.handle, "127.0.0.1", hooks.port)
    try:
        yield hooks
    finally:
        server.close()


class Mailbox:
    """What an SMTP server on 127.0.0.1:``port`` received."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@contextlib.contextmanager
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
