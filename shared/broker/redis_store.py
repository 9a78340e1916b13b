"""The command side of the Redis brokers: publish, history and epochs, by Lua script.

One :class:`RedisStore` serves a single server, a Sentinel-managed primary and a Cluster
alike: each script touches only the keys of one channel, which share a hash tag. The
pub/sub side (links, supervision, probes) lives in each broker.

At most :data:`CONCURRENCY` scripts are in flight at once; the rest wait their turn. A
reconnect storm after a deploy starts hundreds of resumes at the same moment, and
redis-py's connection pool refuses ("Too many connections") rather than queue them.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from redis.exceptions import RedisError

from shared.broker.base import (
    PROVISIONAL_POSITION_TTL,
    BrokerUnavailable,
    History,
    check_since,
    new_epoch,
)
from shared.broker.redis_scripts import (
    HISTORY_LUA,
    PUBLISH_LUA,
    RENEW_EPOCH_LUA,
    channel_keys,
    meta_ttl,
    publish_args,
)
from shared.broker.redis_url import AsyncCommandClient, release_idle
from shared.channels import ChannelOptions
from shared.protocol import Position, Publication

__all__ = ["CONCURRENCY", "RedisStore"]

CONCURRENCY = 64


class RedisStore:
    """Positions and history of channels in Redis, through ``client``."""

    def __init__(
        self, client: AsyncCommandClient, prefix: str, publish_lua: str = PUBLISH_LUA
    ) -> None:
        self.client = client
        self._prefix = prefix
        self._publish = client.register_script(publish_lua)
        self._history = client.register_script(HISTORY_LUA)
        self._renew = client.register_script(RENEW_EPOCH_LUA)
        self._turns = asyncio.Semaphore(CONCURRENCY)

    async def release_idle(self) -> None:
        """Close the command connections no script is using; they reopen when needed.

        The pool grows to as many connections as scripts ran at once (at most
        :data:`CONCURRENCY` per server) and would keep them all for good.
        """
        with contextlib.suppress(RedisError, OSError):
            await release_idle(self.client)

    async def disconnect(self) -> None:
        """Close the client and every connection it holds."""
        await self.client.aclose()

    async def _run(self, what: str, script: Any, keys: Any, args: Any) -> Any:
        try:
            async with self._turns:
                return await script(keys=keys, args=args)
        except (RedisError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"redis {what} failed: {exc}") from exc

    async def publish(
        self, channel: str, data: bytes | str, options: ChannelOptions, time: float
    ) -> Position:
        keys = channel_keys(self._prefix, channel)
        args = publish_args(data, options, time, new_epoch())
        reply = await self._run("publish", self._publish, keys, args)
        return Position(int(reply[0]), reply[1].decode())

    async def history(
        self, channel: str, options: ChannelOptions, *, since: int | None = None, limit: int = 0
    ) -> History:
        check_since(since)
        meta, stream, _ = channel_keys(self._prefix, channel)
        args = ("" if since is None else since, limit, new_epoch(), PROVISIONAL_POSITION_TTL)
        reply = await self._run("history", self._history, [meta, stream], args)
        offset, epoch, entries = int(reply[0]), reply[1].decode(), reply[2]
        publications = [_entry(entry, epoch) for entry in entries]
        if since is None:
            publications.reverse()
        return History(Position(offset, epoch), publications)

    async def renew_epoch(self, channel: str, options: ChannelOptions, stale: str) -> Position:
        meta, _, _ = channel_keys(self._prefix, channel)
        args = (stale, new_epoch(), meta_ttl(options))
        reply = await self._run("epoch renewal", self._renew, [meta], args)
        return Position(int(reply[0]), reply[1].decode())


def _entry(entry: list[Any], epoch: str) -> Publication:
    entry_id, fields = entry
    values = dict(zip(fields[::2], fields[1::2], strict=True))
    return Publication(
        int(entry_id.split(b"-", 1)[0]), epoch, values[b"d"].decode(), float(values[b"t"])
    )
