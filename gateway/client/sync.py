"""A blocking client for scripts and notebooks: the asyncio :class:`Client` running in a
background thread with its own event loop.

    with SyncClient("ws://127.0.0.1:8000/ws", ["orders.eu"]) as client:
        for event in client:
            ...

The connection lives (heartbeats, reconnects, resume) while your code blocks on
something else; events wait in the client's bounded queue until you take them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from gateway.client.connection import Client, ConnectionState, Event
from gateway.client.errors import ClientClosed
from shared.protocol import Position

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """The :class:`Client` for code without an event loop. Takes the same arguments;
    ``on_state`` callbacks run in the background thread.

    Raises (from the constructor, :meth:`next`, iteration and :meth:`wait_connected`)
    what :class:`Client` raises.
    """

    def __init__(self, url: str | Iterable[str], channels: Iterable[str] = (), **options: Any):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="relaycast-sync-client", daemon=True
        )
        self._thread.start()
        self._pending: concurrent.futures.Future[Event] | None = None
        self._closed = False
        try:
            self._client: Client = self._call(_make(url, list(channels), options))
        except BaseException:
            self._stop_loop()
            raise

    @property
    def client(self) -> Client:
        """The asyncio client underneath (read its ``state``, ``positions``...)."""
        return self._client

    @property
    def state(self) -> ConnectionState:
        return self._client.state

    def next(self, timeout: float | None = None) -> Event:
        """The next event, waiting up to ``timeout`` seconds (None: as long as it takes).

        Raises:
            TimeoutError: nothing arrived in time (the event is not lost: the next call
                gets it).
            ClientError: why the client stopped (``ClientClosed`` after :meth:`close`).
        """
        if self._closed:
            raise ClientClosed("the client is closed")
        if self._pending is None:
            self._pending = asyncio.run_coroutine_threadsafe(self._client.receive(), self._loop)
        try:
            event = self._pending.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"no event within {timeout}s") from None
        except concurrent.futures.CancelledError:  # close() from another thread
            self._pending = None
            raise ClientClosed("the client is closed") from None
        except BaseException:
            self._pending = None
            raise
        self._pending = None
        return event

    def __iter__(self) -> Iterator[Event]:
        while True:
            try:
                yield self.next()
            except ClientClosed:
                return

    def wait_connected(self, timeout: float | None = None) -> None:
        self._call(self._client.wait_connected(timeout))

    def subscribe(
        self, channel: str, since: Position | None = None, *, max_rate: float | None = None
    ) -> None:
        self._call(self._client.subscribe(channel, since, max_rate=max_rate))

    def unsubscribe(self, channel: str) -> None:
        self._call(self._client.unsubscribe(channel))

    def close(self) -> None:
        """Close the connection and stop the background thread; iteration ends."""
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._client.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _stop_loop(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()


async def _make(url: str | Iterable[str], channels: list[str], options: dict[str, Any]) -> Client:
    """The client, made and started inside the background loop that will run it."""
    client = Client(url, channels, **options)
    await client.start()
    return client
