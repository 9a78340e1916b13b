"""``relaycast alerts``: rules over metrics raise one alert, resolve it, and remember it.

The metric is one the test publishes itself (``queue.depth`` of host ``worker-1``) through
the metrics library, so its value is exact; the alerts processes, Redis and the gateway
are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis

from publisher.alert_rules import (
    Evaluator,
    Raise,
    Resolve,
    RulesError,
    Unsilence,
    default_rules,
    lookup,
    parse_duration,
    parse_rules,
)
from publisher.metrics import MetricsPublisher
from shared.settings import Settings
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.publishers import PublisherProcess

RULES = """
[[rules]]
name = "queue_deep"
metric = "queue.depth"
op = ">"
threshold = 100
for = "0.6s"
clear = 50
severity = "critical"
message = "queue {value:g} deep on {host}"
"""
FAST = {"alerts_interval": 0.1}


def alert_events(url: str) -> list[dict[str, Any]]:
    """Every event published on ``alerts`` so far, from its history in Redis."""
    with redis.Redis.from_url(url) as client:
        return [msgspec.json.decode(fields[b"d"]) for _, fields in client.xrange("rc:{alerts}:s")]


def silenced(url: str) -> bool:
    with redis.Redis.from_url(url) as client:
        return bool(client.exists("rc:alerts:silence:queue_deep@worker-1"))


class Feed:
    """Publishes ``queue.depth`` of worker-1 every 0.1 s, as a metrics process would.

    It stops on a flag between publishes, not by cancelling: a cancel that lands inside
    the Redis client's command can be lost there, and the loop would then run (and the
    test wait for it) forever.
    """

    def __init__(self, redis_url: str) -> None:
        settings = Settings.load({"redis_url": redis_url, "metrics_interval": 0.1})
        self.metrics = MetricsPublisher(settings, host="worker-1", sampler=_no_psutil)
        self.depth = 0.0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            await self.metrics.publish({"queue": {"depth": self.depth}})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.1)

    async def __aenter__(self) -> Feed:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._stop.set()
        try:
            await asyncio.wait_for(self._task, 30)  # a hang guard: one publish is quick
        finally:
            await self.metrics.close()


def _no_psutil(host: str, interval: float) -> Any:
    raise AssertionError("the test publishes its own metric")


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return path


async def next_event(ws, channel: str = "alerts", timeout: float = 10) -> dict[str, Any]:
    while True:
        frame = await recv_json(ws, timeout)
        if frame["type"] == "message" and frame["channel"] == channel:
            return frame["data"]  # type: ignore[no-any-return]


async def test_a_breach_held_for_its_duration_raises_one_alert_that_resolves_when_clear(
    redis_server, gateways, publishers, rules_file
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    PublisherProcess.start(publishers, "alerts", redis_server.url, alerts_rules=rules_file, **FAST)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "alerts")
    async with Feed(redis_server.url) as feed:
        feed.depth = 150  # above the threshold, but not for 0.6 s
        await asyncio.sleep(0.3)
        feed.depth = 80  # between clear and threshold: no alert, and the timer restarts
        await asyncio.sleep(0.5)
        assert alert_events(redis_server.url) == []

        feed.depth = 150
        breached_at = time.time()
        raised = await next_event(ws)
        assert raised["type"] == "alert.raised"
        alert = raised["alert"]
        assert alert["id"].startswith("queue_deep@worker-1:")
        assert alert["rule"] == "queue_deep" and alert["host"] == "worker-1"
        assert alert["severity"] == "critical" and alert["status"] == "active"
        assert alert["value"] == 150 and alert["threshold"] == 100 and alert["clear"] == 50
        assert alert["message"] == "queue 150 deep on worker-1"
        assert alert["raised_at"] - breached_at >= 0.6 - 0.15  # held for its duration

        feed.depth = 80  # below the threshold, above the clear line: stays active
        await asyncio.sleep(0.6)
        feed.depth = 20
        resolved = await next_event(ws)
    assert resolved["type"] == "alert.resolved"
    assert resolved["alert"]["id"] == alert["id"]
    assert resolved["alert"]["status"] == "resolved"
    assert resolved["alert"]["resolved_by"] == "auto"
    assert resolved["alert"]["resolved_value"] == 20
    assert [e["type"] for e in alert_events(redis_server.url)] == [
        "alert.raised",
        "alert.resolved",
    ]

    late = await open_ws(gateway.ws_url)
    await subscribe(late, "alerts@state")
    state = await next_event(late, "alerts@state", timeout=2)  # at once, no new event needed
    assert state["active"] == []
    assert [a["id"] for a in state["recent"]] == [alert["id"]]
    assert state["recent"][0]["status"] == "resolved"
    await ws.close()
    await late.close()


async def test_two_alert_processes_raise_one_alert_not_two(
    redis_server, gateways, publishers, rules_file
):
    for _ in range(2):
        PublisherProcess.start(
            publishers, "alerts", redis_server.url, alerts_rules=rules_file, **FAST
        )
    async with Feed(redis_server.url) as feed:
        await asyncio.sleep(0.5)  # both processes are up and judging
        feed.depth = 500
        await wait_until(lambda: alert_events(redis_server.url), 10, "an alert")
        await asyncio.sleep(1.0)  # ten more rounds of both processes seeing the breach
        feed.depth = 0
        await wait_until(lambda: len(alert_events(redis_server.url)) >= 2, 10, "resolution")
        await asyncio.sleep(0.5)
    events = alert_events(redis_server.url)
    assert [e["type"] for e in events] == ["alert.raised", "alert.resolved"]
    assert events[0]["alert"]["id"] == events[1]["alert"]["id"]
    assert all(p.running() for p in publishers)


async def test_an_alert_resolved_by_hand_stays_resolved_until_its_condition_clears(
    redis_server, gateways, publishers, rules_file
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    PublisherProcess.start(publishers, "alerts", redis_server.url, alerts_rules=rules_file, **FAST)
    async with (
        Feed(redis_server.url) as feed,
        httpx.AsyncClient(base_url=gateway.url, timeout=30) as http,
    ):
        feed.depth = 300
        await wait_until(lambda: alert_events(redis_server.url), 10, "an alert")
        first = alert_events(redis_server.url)[0]["alert"]
        response = await http.post(
            f"/api/alerts/{first['id']}/resolve", json={"note": "draining the queue"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["resolved_by"] == "manual"
        assert response.json()["note"] == "draining the queue"
        await asyncio.sleep(1.0)  # still breached, but silenced
        assert len(alert_events(redis_server.url)) == 2

        feed.depth = 10  # clears: the silence ends
        await wait_until(lambda: not silenced(redis_server.url), 10, "the silence to end")
        feed.depth = 300  # a new occurrence, with a new id
        await wait_until(lambda: len(alert_events(redis_server.url)) >= 3, 10, "a new alert")
        events = alert_events(redis_server.url)
        assert [e["type"] for e in events] == ["alert.raised", "alert.resolved", "alert.raised"]
        assert events[2]["alert"]["id"] != first["id"]
        alerts = (await http.get("/api/alerts")).json()
    assert [a["id"] for a in alerts["active"]] == [events[2]["alert"]["id"]]
    assert [a["id"] for a in alerts["recent"]] == [first["id"]]


RACER = """
import asyncio, os, sys, time
import redis.asyncio as aioredis
from shared.settings import Settings
from shared.state.alerts import Alert, AlertStore

async def main(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    store = AlertStore(client, Settings.load({"redis_url": url}))
    while not await client.exists("go"):
        await asyncio.sleep(0.001)
    raised = 0
    for n in range(50):
        alert = Alert(
            id=f"race@h{n}:{os.getpid()}", rule="race", host=f"h{n}", severity="warning",
            message="race", metric="x", op=">", threshold=1, clear=1, value=2,
            raised_at=time.time(),
        )
        raised += (await store.raise_alert(alert))[0]
    print(raised)
    await client.aclose()

asyncio.run(main(sys.argv[1]))
"""


def test_two_processes_raising_the_same_alerts_at_once_raise_each_once(redis_server):
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, redis_server.url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    time.sleep(0.5)  # both wait at the start line
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("go", 1)
    counts = [int(racer.communicate(timeout=30)[0]) for racer in racers]
    assert sum(counts) == 50, counts  # each of the 50 alerts raised by exactly one process
    events = alert_events(redis_server.url)
    assert len(events) == 50
    assert len({e["alert"]["host"] for e in events}) == 50
    print(f"\nraised by each process: {counts}")


def test_a_bad_rules_file_stops_the_process_with_a_clear_message(redis_server, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[rules]]\nname = "x"\nmetric = "cpu.percent"\nthreshold = 9\nop = "=="\n')
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "alerts", "--alerts-rules", str(path)],
        env={"RELAYCAST_REDIS_URL": redis_server.url, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "rule 'x'" in result.stderr and "op" in result.stderr


class TestRules:
    def test_the_shipped_rules_load(self):
        names = {rule.name for rule in default_rules()}
        assert {"cpu_high", "memory_high", "disk_full", "load_high", "swap_high"} <= names

    @pytest.mark.parametrize(
        ("table", "message"),
        [
            ({"op": "=="}, "Invalid enum value '=='"),
            ({"for": "ten minutes"}, "is not a duration"),
            ({"clear": 120}, "clear must be <= threshold"),
            ({"metric": "cpu..percent"}, "dotted path"),
            ({"name": "has space"}, "name must be"),
            ({"message": "{nope}"}, "message template"),
            ({"treshold": 5}, "unknown field"),
            ({"severity": "panic"}, "Invalid enum value 'panic'"),
        ],
    )
    def test_a_malformed_rule_is_refused_with_its_name_and_field(self, table, message):
        rule = {"name": "r1", "metric": "cpu.percent", "threshold": 90, **table}
        with pytest.raises(RulesError, match=message.replace("(", r"\(")) as caught:
            parse_rules({"rules": [rule]})
        assert repr(rule["name"]) in str(caught.value)

    def test_durations(self):
        assert parse_duration("90s") == 90
        assert parse_duration("5m") == 300
        assert parse_duration("250ms") == 0.25
        assert parse_duration(12) == 12
        with pytest.raises(RulesError):
            parse_duration(-1)

    def test_lookup_follows_dotted_paths_and_list_indexes(self):
        snapshot = {"cpu": {"per_core": [10, 95.5]}, "load": {"1m": 2}, "flag": True}
        assert lookup(snapshot, "cpu.per_core.1") == 95.5
        assert lookup(snapshot, "load.1m") == 2.0
        assert lookup(snapshot, "cpu.per_core.7") is None
        assert lookup(snapshot, "flag") is None
        assert lookup(snapshot, "missing.path") is None

    def test_hysteresis_and_duration_are_judged_on_sample_times(self):
        (rule,) = parse_rules(
            {
                "rules": [
                    {
                        "name": "low_disk",
                        "metric": "free",
                        "op": "<",
                        "threshold": 10,
                        "clear": 20,
                        "for": 10,
                        "clear_for": 5,
                    }
                ]
            }
        )
        evaluator = Evaluator([rule])
        active: set[str] = set()

        def at(t: float, free: float) -> list[object]:
            return evaluator.judge({"h": {"time": t, "interval": 5, "free": free}}, active, t)

        assert at(0, 50) == [Unsilence("low_disk@h")]
        assert at(5, 5) == []
        assert at(5, 5) == []  # the same sample is judged once
        assert at(10, 15) == []  # not breached: the duration starts over
        assert at(15, 5) == []
        actions = at(25, 5)
        assert actions == [Raise(rule, "h", 5.0, 25)]
        active.add("low_disk@h")
        assert at(30, 15) == []  # above the threshold, below the clear line
        assert at(35, 25) == []  # cleared, not yet for 5 s
        assert at(40, 25) == [Resolve("low_disk@h", 25.0, 40)]
        stale = {"h": {"time": 50, "interval": 5, "free": 1}}
        assert evaluator.judge(stale, active, 1000) == [], "a stale snapshot is not judged"
