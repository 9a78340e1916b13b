"""Brokers: the seam between gateways, publishers and Redis (see base.py)."""

from __future__ import annotations

from shared.broker.base import (
    Broker,
    BrokerEventHandler,
    BrokerUnavailable,
    History,
    InvalidPosition,
)
from shared.settings import Settings

__all__ = [
    "Broker",
    "BrokerEventHandler",
    "BrokerUnavailable",
    "History",
    "InvalidPosition",
    "create_broker",
]


def create_broker(settings: Settings) -> Broker:
    """The broker that ``settings.redis_url`` selects.

    ``memory://`` is one process without Redis (every broker made from it in this
    process shares its channels, so publishers in the process reach its gateway);
    ``redis+cluster://`` a Redis Cluster; ``redis+sentinel://`` a Sentinel-managed
    primary; any other URL one Redis server (see :mod:`shared.broker.redis_url`).
    """
    if settings.redis_url.startswith("memory://"):
        from shared.broker.memory import MemoryBroker, process_bus

        return MemoryBroker(process_bus(settings.redis_url.removeprefix("memory://")))
    from shared.broker.redis_base import LinkOptions
    from shared.broker.redis_url import parse_redis_url

    kind = parse_redis_url(settings.redis_url).kind
    options = LinkOptions(
        prefix=settings.key_prefix,
        name=settings.gateway_id,
        probe_interval=settings.probe_interval,
        probe_timeout=settings.probe_timeout,
    )
    if kind == "cluster":
        from shared.broker.redis_cluster import RedisClusterBroker

        return RedisClusterBroker(settings.redis_url, options)
    if kind == "sentinel":
        from shared.broker.redis_sentinel import SentinelBroker

        return SentinelBroker(settings.redis_url, options)
    from shared.broker.redis import RedisBroker

    return RedisBroker(settings.redis_url, options)
