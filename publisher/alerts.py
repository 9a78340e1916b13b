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
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from publisher.alert_rules import (
    Evaluator,
    Raise,
    Resolve,
    Rule,
    RulesError,
    Unsilence,
    default_rules,
    load_rules,
)
from publisher.health import Health, run_with_health
from publisher.rounds import run_rounds
from shared.broker import BrokerUnavailable
from shared.broker.redis_url import async_command_client, parse_redis_url
from shared.settings import Settings
from shared.state.alerts import Alert, AlertStore, evaluate_channel
from shared.state.history import HistoryStore, SeriesInfo
from shared.state.hosts import demand_key, read_hosts

__all__ = ["AlertsPublisher", "run_alerts"]

log = logging.getLogger("relaycast.alerts")

# Republish alerts@state this often even without changes, so that the channel's one kept
# message never expires from history while alerts stay unchanged.
STATE_REFRESH = 3600.0


class AlertsPublisher:
    """One alerts process: :meth:`evaluate` once, or :meth:`run` until stopped."""

    def __init__(self, settings: Settings, rules: list[Rule], rules_path: str = "") -> None:
        self.settings = settings
        self.evaluator = Evaluator(rules)
        self._rules_path = rules_path
        self._rules_stamp = _stamp(rules_path)
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
        self.history = HistoryStore(client, settings)
        self.wake = asyncio.Event()
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
        snapshots.update(await self._service_snapshots())
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

    async def _service_snapshots(self) -> dict[str, Any]:
        """Each service's series as snapshots the rules judge: one for the source, and one
        per entity (``<source>[<entity>]``), each with its series at their dotted paths."""
        names = [s.name for s in await self.history.sources() if s.kind == "service"]
        if not names:
            return {}
        pipe = self._redis.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(self.history.series_key(name))
        try:
            hashes = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        snapshots: dict[str, Any] = {}
        for name, series in zip(names, hashes, strict=True):
            for raw in series.values():
                info = _decode_series(raw)
                subject = f"{name}[{info.entity}]" if info.entity else name
                snapshot = snapshots.setdefault(subject, {"time": 0.0, "interval": 60.0})
                snapshot["time"] = max(snapshot["time"], info.time)
                _place(snapshot, info.metric, info.value)
        return snapshots

    def reload_rules(self) -> bool:
        """Read the rules file again if it changed; a file that does not parse is logged
        and the rules in force stay. True when new rules took effect."""
        if not self._rules_path:
            return False
        stamp = _stamp(self._rules_path)
        if stamp == self._rules_stamp:
            return False
        self._rules_stamp = stamp
        try:
            rules = load_rules(self._rules_path)
        except RulesError as exc:
            log.error(
                "rules not reloaded: %s; keeping the %d in force", exc, len(self.evaluator.rules)
            )
            return False
        self.evaluator.rules = rules
        log.info("reloaded %d rules from %s", len(rules), self._rules_path)
        return True

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
            self.reload_rules()
            await self.evaluate()

        interval = self.settings.alerts_interval
        doing = "evaluate alerts"
        listener = asyncio.create_task(self._listen_for_evaluate())
        try:
            await run_rounds(
                one_round,
                interval,
                stop or asyncio.Event(),
                log,
                doing=doing,
                health=health,
                wake=self.wake,
            )
        finally:
            listener.cancel()

    async def _listen_for_evaluate(self) -> None:
        """Wake the loop whenever someone asks for an evaluation now (``POST
        /api/alerts/evaluate`` publishes on ``rc:alerts:evaluate``); resubscribe after a
        Redis outage."""
        channel = evaluate_channel(self.settings.key_prefix)
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(channel)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self.wake.set()
            except (RedisError, OSError):
                await asyncio.sleep(1.0)

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
    publisher = AlertsPublisher(settings, rules, settings.alerts_rules)
    health = Health(settings.alerts_interval, "evaluate alerts")
    await run_with_health(publisher, health, settings.health_port, stop)


_decode_series = msgspec.json.Decoder(SeriesInfo).decode


def _stamp(path: str) -> bytes | None:
    """A digest of the rules file, to notice a change (modification times are too coarse:
    two writes within one clock tick look alike); None when absent or unset."""
    if not path:
        return None
    try:
        return hashlib.sha256(Path(path).read_bytes()).digest()
    except OSError:
        return None


def _place(snapshot: dict[str, Any], path: str, value: float) -> None:
    """Set ``value`` at dotted ``path``; a path that runs into a number is left out."""
    *parents, leaf = path.split(".")
    at = snapshot
    for part in parents:
        inner = at.setdefault(part, {})
        if not isinstance(inner, dict):
            return
        at = inner
    if not isinstance(at.get(leaf), dict):
        at[leaf] = value
