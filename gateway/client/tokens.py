"""Connection tokens for the client: a fixed one, or a function asked for a fresh one per
connection and again shortly before the current one expires."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from shared.protocol import Refresh, encode

__all__ = ["TokenSource", "Tokens"]

TokenSource = str | Callable[[], str | Awaitable[str]]
"""A token, or a function that returns a fresh one (called per connection and refresh)."""


class Tokens:
    """The client's token source and the refresh of the open connection's token."""

    def __init__(self, source: TokenSource | None, refresh_margin: float) -> None:
        self.source = source
        self.refresh_margin = refresh_margin
        self._refresher: asyncio.Task[None] | None = None

    async def fresh(self) -> str | None:
        source = self.source
        value = source() if callable(source) else source
        if inspect.isawaitable(value):
            value = await value
        return value

    def schedule_refresh(self, ws: ClientConnection, expires: int | None) -> None:
        """Refresh ``refresh_margin`` seconds before ``expires`` (if the source is a function)."""
        self.cancel_refresh()
        if expires is None or not callable(self.source):
            return
        delay = max(1.0, expires - time.time() - self.refresh_margin)
        self._refresher = asyncio.create_task(self._refresh(ws, delay))

    def cancel_refresh(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None

    async def _refresh(self, ws: ClientConnection, delay: float) -> None:
        await asyncio.sleep(delay)
        token = await self.fresh()
        if token:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(Refresh(token=token)).decode())
