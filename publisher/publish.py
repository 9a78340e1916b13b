"""Publish events from any Python service: ``Publisher`` (blocking) and ``AsyncPublisher``.

    from publisher import Publisher
    Publisher("redis://127.0.0.1:6379/0").publish("orders.eu", {"id": 7, "state": "paid"})

The URL may also name a Redis Cluster (``redis+cluster://host:port,host:port``) or a
Sentinel-managed primary (``redis+sentinel://host:port,host:port/service``); see
``shared/broker/redis_url.py``.

``data`` is any JSON-encodable value (msgspec Structs and dataclasses included). Each
publish is one atomic Redis script: the message gets the channel's next offset, is kept in
history when the channel keeps any, and goes out on pub/sub to every gateway.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker import BrokerUnavailable
from shared.broker.base import new_epoch
from shared.broker.redis_scripts import channel_keys, publish_args
from shared.broker.redis_url import async_command_client, blocking_command_client, parse_redis_url
from shared.channels import check_channel
from shared.protocol import Position
from shared.settings import Settings

__all__ = ["AsyncPublisher", "PayloadTooLarge", "Publisher", "encode_payload"]

_encoder = msgspec.json.Encoder()


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


def _settings(redis_url: str | None, settings: Settings | None) -> Settings:
    if settings is None:
        settings = Settings.load({"redis_url": redis_url})
    if settings.redis_url.startswith("memory://"):
        raise ValueError("publishers need a Redis URL; memory:// lives inside one gateway")
    return settings


def _script_call(settings: Settings, channel: str, data: Any) -> tuple[Any, Any]:
    """Validate one publish and build the publish script's KEYS and ARGV."""
    check_channel(channel)
    payload = encode_payload(data, settings.max_payload_bytes)
    options = settings.channel_options(channel)
    keys = channel_keys(settings.key_prefix, channel)
    return keys, publish_args(payload, options, time.time(), new_epoch())


class Publisher:
    """Blocking publisher for scripts and synchronous services. Thread-safe."""

    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = _settings(redis_url, settings)
        target = parse_redis_url(self.settings.redis_url)
        self._redis = blocking_command_client(target, socket_connect_timeout=3, socket_timeout=5)
        self._script = self._redis.register_script(target.publish_script)

    def publish(self, channel: str, data: Any) -> Position:
        """Publish ``data`` on ``channel``; return the position it was given.

        Raises:
            InvalidChannel, TypeError, PayloadTooLarge: bad arguments; nothing was published.
            BrokerUnavailable: Redis cannot be reached.
        """
        keys, args = _script_call(self.settings, channel, data)
        try:
            offset, epoch = self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis publish failed: {exc}") from exc
        return Position(int(offset), epoch.decode())

    def close(self) -> None:
        self._redis.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPublisher:
    """The asyncio twin of :class:`Publisher`."""

    def __init__(self, redis_url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = _settings(redis_url, settings)
        target = parse_redis_url(self.settings.redis_url)
        self._redis = async_command_client(target, socket_connect_timeout=3, socket_timeout=5)
        self._script = self._redis.register_script(target.publish_script)

    async def publish(self, channel: str, data: Any) -> Position:
        """Publish ``data`` on ``channel``; see :meth:`Publisher.publish`."""
        keys, args = _script_call(self.settings, channel, data)
        try:
            offset, epoch = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis publish failed: {exc}") from exc
        return Position(int(offset), epoch.decode())

    @property
    def redis(self) -> aioredis.Redis:
        """The client, for publishers that keep state of their own in one Redis server.

        Raises:
            TypeError: the URL names a Redis Cluster, where scripts that touch keys of
                several channels cannot run.
        """
        if not isinstance(self._redis, aioredis.Redis):
            raise TypeError("this needs one Redis server (or Sentinel), not Redis Cluster")
        return self._redis

    async def close(self) -> None:
        await self._redis.aclose()

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
