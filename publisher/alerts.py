"""``relaycast alerts``: watch every host's metrics against the rules; raise and resolve alerts.

Every ``alerts_interval`` the process reads the newest snapshot of each host from Redis
(``rc:metrics:hosts``, written by the metrics publishers) and the active alerts, judges
them with :class:`~publisher.alert_rules.Evaluator`, and raises or resolves through
:class:`~shared.state.alerts.AlertStore`: the event goes to ``alerts``, the active and
recent alerts to ``alerts@state``. It also keeps ``rc:metrics:demand`` alive so the metrics
publishers sample at full rate while it watches.

Run several for availability: raising is set-if-absent on the alert's fingerprint in
Redis, and resolving compares the stored alert, so each alert is raised and resolved once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from publisher.alert_rules import (
    Evaluator,
    Raise,
    Resolve,
    Rule,
    Unsilence,
    default_rules,
    load_rules,
)
from publisher.health import Health, serve_health
from publisher.rounds import run_rounds
from shared.broker import BrokerUnavailable
from shared.broker.redis_url import async_command_client, parse_redis_url
from shared.settings import Settings
from shared.state.alerts import Alert, AlertStore
from shared.state.hosts import demand_key, read_hosts

__all__ = ["AlertsPublisher", "run_alerts"]

log = logging.getLogger("relaycast.alerts")

# Republish alerts@state this often even without changes, so that the channel's one kept
# message never expires from history while alerts stay unchanged.
STATE_REFRESH = 3600.0


class AlertsPublisher:
    """One alerts process: :meth:`evaluate` once, or :meth:`run` until stopped."""

    def __init__(self, settings: Settings, rules: list[Rule]) -> None:
        self.settings = settings
        self.evaluator = Evaluator(rules)
        target = parse_redis_url(settings.redis_url)
        if target.kind == "cluster":
            raise ValueError(
                "alerts need one Redis server or Sentinel: raising an alert and publishing it "
                "is one script over keys of several channels, which Redis Cluster cannot run"
            )
        client = async_command_client(target, socket_connect_timeout=3, socket_timeout=5)
        assert isinstance(client, aioredis.Redis)  # one server, or Sentinel's primary
        self._redis = client
        self.store = AlertStore(client, settings)
        self.raised = 0
        self.resolved = 0

    async def evaluate(self) -> None:
        """One round: keep the metrics coming, read, judge, raise and resolve."""
        prefix = self.settings.key_prefix
        demand_ttl = max(30, int(3 * self.settings.alerts_interval) + 1)
        try:
            await self._redis.set(demand_key(prefix), b"1", ex=demand_ttl)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        snapshots: dict[str, Any] = {}
        for host, raw in (await read_hosts(self._redis, prefix)).items():
            try:
                snapshots[host] = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                log.warning("unreadable metrics snapshot of %s; skipped", host)
        active = await self.store.active()
        now = time.time()
        unsilence: list[str] = []
        for action in self.evaluator.judge(snapshots, set(active), now):
            match action:
                case Raise():
                    await self._raise(action)
                case Resolve():
                    stored, alert = active[action.fingerprint]
                    await self._resolve(stored, alert, action)
                case Unsilence():
                    unsilence.append(action.fingerprint)
        await self.store.clear_silence(unsilence)

    async def _raise(self, action: Raise) -> None:
        rule = action.rule
        alert = Alert(
            id=f"{rule.name}@{action.host}:{int(action.time * 1000)}",
            rule=rule.name,
            host=action.host,
            severity=rule.severity,
            message=rule.describe(action.host, action.value),
            metric=rule.metric,
            op=rule.op,
            threshold=rule.threshold,
            clear=rule.clear_at,
            value=action.value,
            raised_at=action.time,
        )
        raised, _current = await self.store.raise_alert(alert)
        if raised:
            self.raised += 1
            log.warning("raised %s: %s", alert.id, alert.message)

    async def _resolve(self, stored: bytes, alert: Alert, action: Resolve) -> None:
        resolved = msgspec.structs.replace(
            alert,
            status="resolved",
            resolved_at=action.time,
            resolved_by="auto",
            resolved_value=action.value,
        )
        if await self.store.resolve(stored, resolved):
            self.resolved += 1
            log.info("resolved %s (%s now %g)", alert.id, alert.metric, action.value)

    async def run(self, stop: asyncio.Event | None = None, health: Health | None = None) -> None:
        """Evaluate every ``alerts_interval`` until ``stop`` is set; survive Redis outages."""
        published_at = -STATE_REFRESH

        async def one_round(started: float) -> None:
            nonlocal published_at
            if started - published_at >= STATE_REFRESH:
                await self.store.publish_state()
                published_at = started
            await self.evaluate()

        interval = self.settings.alerts_interval
        doing = "evaluate alerts"
        await run_rounds(
            one_round, interval, stop or asyncio.Event(), log, doing=doing, health=health
        )

    async def close(self) -> None:
        await self._redis.aclose()


async def run_alerts(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The ``relaycast alerts`` process.

    Raises:
        RulesError: the rules file cannot be used (before anything runs).
        ValueError: the Redis URL names a Redis Cluster.
    """
    rules = load_rules(settings.alerts_rules) if settings.alerts_rules else default_rules()
    log.info(
        "watching %d rules (%s) every %.1fs",
        len(rules),
        settings.alerts_rules or "defaults",
        settings.alerts_interval,
    )
    publisher = AlertsPublisher(settings, rules)
    health = Health(settings.alerts_interval, "evaluate alerts")
    server = await serve_health(health, settings.health_port) if settings.health_port else None
    try:
        await publisher.run(stop, health)
    finally:
        if server is not None:
            server.close()
        await publisher.close()
