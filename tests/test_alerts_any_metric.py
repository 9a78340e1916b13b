"""Alerts over any metric: ratio and rate rules over services' own series, one alert per
entity, rules changed without a restart, evaluation on demand, a service's own alerts,
silences, and the alert history page by page."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from publisher.alert_rules import Evaluator, Raise, RulesError, parse_rules
from tests.helpers import GatewayProcess
from tests.publishers import PublisherProcess

RATIO_RULE = """
[[rules]]
name = "error_rate"
metric = "errors"
per = "messages"
op = ">"
threshold = {threshold}
severity = "critical"
hosts = ["billing*"]
message = "{{host}}: {{value:.0%}} of messages fail"
"""


async def active(http: httpx.AsyncClient) -> dict[str, dict]:
    state = (await http.get("/api/alerts")).json()
    return {a["host"]: a for a in state["active"]}


async def test_a_ratio_rule_alerts_per_entity_and_follows_a_changed_file(
    redis_server, gateways, publishers, tmp_path: Path
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    rules = tmp_path / "rules.toml"
    rules.write_text(RATIO_RULE.format(threshold=0.5))
    PublisherProcess.start(
        publishers, "alerts", redis_server.url, alerts_rules=str(rules), alerts_interval=0.3
    )
    batch = {"interval": 10, "samples": []}
    for account, errors in (("acct-1", 8), ("acct-2", 3)):
        batch["samples"] += [
            {"metric": "errors", "value": errors, "kind": "counter", "entity": account},
            {"metric": "messages", "value": 10, "kind": "counter", "entity": account},
        ]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        assert (await http.post("/api/metrics/billing", json=batch)).status_code == 200
        alerts: dict[str, dict] = {}

        async def raised(count: int, what: str) -> None:
            deadline = asyncio.get_running_loop().time() + 20
            while len(alerts) < count:
                assert asyncio.get_running_loop().time() < deadline, f"never raised: {what}"
                await asyncio.sleep(0.2)
                alerts.update(await active(http))

        await raised(1, "the error_rate alert of acct-1")
        assert set(alerts) == {"billing[acct-1]"}  # acct-2's 30% stays below 50%
        assert alerts["billing[acct-1]"]["message"] == "billing[acct-1]: 80% of messages fail"

        # A file that does not parse changes nothing; a good one takes effect, no restart.
        rules.write_text("[[rules]]\nname = 'broken'\n")
        await asyncio.sleep(1)
        rules.write_text(RATIO_RULE.format(threshold=0.2))
        await asyncio.sleep(1)  # a round under the new rules, then the next batch
        assert (await http.post("/api/metrics/billing", json=batch)).status_code == 200
        await raised(2, "acct-2 under the lowered threshold")
        assert set(alerts) == {"billing[acct-1]", "billing[acct-2]"}
        heard = (await http.post("/api/alerts/evaluate")).json()
        assert heard["listeners"] >= 1


async def test_a_service_raises_resolves_and_silences_and_history_tells(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    own = {"rule": "backlog", "source": "billing", "severity": "warning", "message": "slow"}
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        first = (await http.post("/api/alerts", json=own)).json()
        assert first["raised"] is True and first["alert"]["host"] == "billing"
        again = (await http.post("/api/alerts", json=own)).json()
        assert again["raised"] is False and again["why"] == "active already"
        assert "billing" in await active(http)
        done = await http.post("/api/alerts/resolve", json={"rule": "backlog", "source": "billing"})
        assert done.json()["resolved_by"] == "service"
        missing = await http.post(
            "/api/alerts/resolve", json={"rule": "backlog", "source": "billing"}
        )
        assert missing.status_code == 404

        silence = {"rule": "backlog", "duration": "10m", "by": "ops@example.com"}
        assert (await http.post("/api/alerts/silence", json=silence)).status_code == 200
        muted = (await http.post("/api/alerts", json=own)).json()
        assert muted["raised"] is False and muted["why"] == "silenced"

        for body in (
            {"rule": "backlog", "duration": "forever", "by": "x"},
            {"rule": "backlog", "alert": "a@b", "duration": 60, "by": "x"},
            {"rule": "backlog", "duration": 0, "by": "x"},
            {"rule": "backlog", "duration": 60, "by": " "},
        ):
            response = await http.post("/api/alerts/silence", json=body)
            assert response.status_code == 422, body
        bad = await http.post("/api/alerts", json={**own, "source": "no spaces"})
        assert bad.status_code == 422

        log = (await http.get("/api/events/alerts?limit=2")).json()
        assert [e["type"] for e in log["events"]] == ["alert.silenced", "alert.resolved"]
        assert log["events"][0]["data"]["by"] == "ops@example.com"
        older = (await http.get(f"/api/events/alerts?before={log['next_before']}")).json()
        assert [e["type"] for e in older["events"]] == ["alert.raised"]


def test_a_rate_rule_judges_the_change_per_second_over_its_window():
    (rule,) = parse_rules(
        {"rules": [{"name": "growing", "metric": "queue", "threshold": 5, "rate": "10s"}]}
    )
    evaluator = Evaluator([rule])
    actions = []
    for t in range(0, 21, 2):  # the queue grows by 10 a second
        snapshot = {"time": 1000.0 + t, "interval": 2, "queue": 10.0 * t}
        actions += evaluator.judge({"svc": snapshot}, set(), 1000.0 + t)
    (first,) = [a for a in actions if isinstance(a, Raise)][:1]
    assert first.time >= 1009 and first.value == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        ({"name": "r", "metric": "a", "threshold": 1, "per": "b..c"}, "per must be"),
        ({"name": "r", "metric": "a", "threshold": 1, "rate": "soon"}, "not a duration"),
        ({"name": "r", "metric": "a", "threshold": "high"}, "Expected `float`"),
    ],
)
def test_rules_that_cannot_parse_say_which_field(rule, says):
    with pytest.raises(RulesError, match=says):
        parse_rules({"rules": [rule]})
