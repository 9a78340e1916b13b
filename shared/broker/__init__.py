"""Brokers: the seam between gateways, publishers and Redis (see base.py)."""

from __future__ import annotations

from shared.broker.base import Broker, BrokerEventHandler, BrokerUnavailable, History, Publication
from shared.settings import Settings

__all__ = [
    "Broker",
    "BrokerEventHandler",
    "BrokerUnavailable",
    "History",
    "Publication",
    "create_broker",
]


def create_broker(settings: Settings) -> Broker:
    """The broker that ``settings.redis_url`` selects: ``memory://`` or a Redis URL."""
    if settings.redis_url.startswith("memory://"):
        from shared.broker.memory import MemoryBroker

        return MemoryBroker()
    from shared.broker.redis import RedisBroker

    return RedisBroker(
        settings.redis_url,
        prefix=settings.key_prefix,
        name=settings.gateway_id,
        probe_interval=settings.probe_interval,
        probe_timeout=settings.probe_timeout,
    )
