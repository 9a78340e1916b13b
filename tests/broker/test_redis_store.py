"""The Redis command side: its connection pool grows with a burst and shrinks after it."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio as aioredis

from shared.broker.redis_store import CONCURRENCY, RedisStore
from shared.channels import ChannelOptions
from shared.localredis import LocalRedis
from tests.helpers import wait_until

ORDERED = ChannelOptions(pattern="*", history_size=100, history_ttl=600)


def clients(server: LocalRedis) -> int:
    """Connections to ``server`` other than the one asking."""
    with redis.Redis(port=server.port) as client:
        return int(client.info("clients")["connected_clients"]) - 1


async def test_idle_command_connections_close_after_a_burst(shared_redis: LocalRedis) -> None:
    before = clients(shared_redis)
    store = RedisStore(aioredis.Redis.from_url(shared_redis.url), "rc")
    try:
        await store.publish("store.burst", "1", ORDERED, 1.0)
        # A burst of reads at once, as when many clients resume after a deploy.
        await asyncio.gather(
            *(store.history("store.burst", ORDERED, since=0, limit=10) for _ in range(200))
        )
        opened = clients(shared_redis) - before
        assert 1 < opened <= CONCURRENCY
        await store.release_idle()
        await wait_until(lambda: clients(shared_redis) == before, 5, "idle connections closed")
        # The pool still works: connections reopen on demand.
        history = await store.history("store.burst", ORDERED, since=0, limit=10)
        assert [p.offset for p in history.publications] == [1]
    finally:
        await store.disconnect()
