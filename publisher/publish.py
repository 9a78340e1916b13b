"""Publish events from any Python service: ``Publisher`` (blocking) and ``AsyncPublisher``.

    from publisher import Publisher
    Publisher("redis://127.0.0.1:6379/0").publish("orders.eu", {"id": 7, "state": "paid"})

The URL may also name a Redis Cluster (``redis+cluster://host:port,host:port``) or a
Sentinel-managed primary (``redis+sentinel://host:port,host:port/service``); see
``shared/broker/redis_url.py``. With ``memory://``, an :class:`AsyncPublisher` publishes
to the gateway running in the same process (on the same event loop).

``data`` is any JSON-encodable value (msgspec Structs and dataclasses included). Each
publish goes through the broker (:meth:`shared.broker.Broker.publish`), as the gateway's
own do: on Redis one atomic script gives the message the channel's next offset, keeps it
in history when the channel keeps any, and sends it on pub/sub to every gateway.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Generic, Self, TypeVar

import msgspec
import redis.asyncio as aioredis

from shared.broker import Broker, create_broker
from shared.broker.redis_store import RedisStore
from shared.channels import check_channel
from shared.protocol import Position
from shared.settings import Settings

__all__ = [
    "AsyncClosing",
    "AsyncPublisher",
    "PayloadTooLarge",
    "Publisher",
    "PublisherApi",
    "encode_payload",
]

_encoder = msgspec.json.Encoder()
_T = TypeVar("_T")


class PayloadTooLarge(ValueError):
    """The encoded payload is larger than ``max_payload_bytes``."""


def encode_payload(data: Any, limit: int) -> bytes:
    """Encode ``data`` as JSON and check its size.

    Raises:
        TypeError: ``data`` is not JSON-encodable.
        PayloadTooLarge: the encoding is over ``limit`` bytes.
    """
    try:
        payload = _encoder.encode(data)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"data is not JSON-encodable: {exc}") from exc
    if len(payload) > limit:
        raise PayloadTooLarge(f"payload is {len(payload)} bytes; the limit is {limit}")
    return payload


class AsyncClosing:
    """``async with`` for an object whose ``close()`` releases what it holds."""

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncPublisher(AsyncClosing):
    """Publishes through a broker: its own, made from the URL, or ``broker`` if given
    (which it then does not close)."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        broker: Broker | None = None,
    ) -> None:
        self.settings = settings or Settings.load({"redis_url": redis_url})
        self._own = broker is None
        self.broker = broker or create_broker(self.settings)

    async def publish(self, channel: str, data: Any) -> Position:
        """Publish ``data`` on ``channel``; return the position it was given.

        Raises:
            InvalidChannel, TypeError, PayloadTooLarge: bad arguments; nothing was published.
            BrokerUnavailable: Redis cannot be reached.
        """
        check_channel(channel)
        payload = encode_payload(data, self.settings.max_payload_bytes)
        options = self.settings.channel_options(channel)
        return await self.broker.publish(channel, payload, options, time.time())

    @property
    def redis(self) -> aioredis.Redis:
        """The broker's command client, for publishers that keep state in one Redis server
        (tasks, alerts).

        Raises:
            TypeError: the URL names a Redis Cluster, where scripts that touch keys of
                several channels cannot run, or ``memory://``, which keeps no such state.
        """
        client = self.broker.client if isinstance(self.broker, RedisStore) else None
        if not isinstance(client, aioredis.Redis):
            raise TypeError(
                "this needs one Redis server (or Sentinel), not Redis Cluster or memory://"
            )
        return client

    async def close(self) -> None:
        if self._own:
            await self.broker.close()


StoreT = TypeVar("StoreT")


class PublisherApi(AsyncClosing, Generic[StoreT]):
    """Base of the APIs that write through a state store (tasks, notifications).

    Each either borrows an :class:`AsyncPublisher` (whose owner closes it, so several APIs
    share one connection pool) or makes and owns one from ``redis_url`` and ``settings``.
    """

    store_type: Callable[[aioredis.Redis, Settings], StoreT]

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        publisher: AsyncPublisher | None = None,
    ) -> None:
        self._own = publisher is None
        self._publisher = publisher or AsyncPublisher(redis_url, settings=settings)
        self.store = self.store_type(self._publisher.redis, self._publisher.settings)

    async def close(self) -> None:
        if self._own:
            await self._publisher.close()


class Publisher:
    """Blocking publisher for scripts and synchronous services. Thread-safe.

    It runs an :class:`AsyncPublisher` on an event loop of its own, in a thread, so that
    every publish takes the one path through the broker. ``memory://`` is refused here:
    that broker lives on the event loop of the process' gateway.
    """

    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.load({"redis_url": redis_url})
        if self.settings.redis_url.startswith("memory://"):
            raise ValueError(
                "memory:// lives on the event loop of the gateway in this process:"
                " publish there with AsyncPublisher, or give a Redis URL"
            )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="relaycast-publisher", daemon=True
        )
        self._thread.start()
        try:
            self._publisher = self._run(self._open())
        except BaseException:  # a URL the broker refuses: leave no thread behind
            self._stop()
            raise

    async def _open(self) -> AsyncPublisher:
        return AsyncPublisher(settings=self.settings)

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def publish(self, channel: str, data: Any) -> Position:
        """Publish ``data`` on ``channel``; see :meth:`AsyncPublisher.publish`."""
        return self._run(self._publisher.publish(channel, data))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._publisher.close())
        self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
