"""Connection rebalancing (gateway/rebalance.py): connections past their age limit are
asked to reconnect with 4002, at jittered times, and never while the gateway drains."""

from __future__ import annotations

import random

import pytest
from websockets.exceptions import ConnectionClosed

from gateway.commands import Limits
from gateway.hub import Hub
from gateway.rebalance import Rebalancer
from gateway.session import Session
from shared.broker.memory import MemoryBroker
from shared.protocol import CloseCode
from shared.settings import Settings, SettingsError
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe


def hub_with(sessions: int) -> Hub:
    hub = Hub(MemoryBroker(), Settings(redis_url="memory://"))
    for _ in range(sessions):
        hub.attach(Session(Limits()))
    return hub


def closed(hub: Hub) -> list[Session]:
    return [s for s in hub.sessions if s.close_code is not None]


class TestAgeLimit:
    def test_connection_is_closed_with_4002_once_past_its_age_limit(self):
        hub = hub_with(1)
        rebalancer = Rebalancer(hub, max_age=10.0, jitter=0.2, rng=lambda: 0.5)
        assert rebalancer.check(100.0) == 0  # first seen: its limit is 9 s from now
        assert rebalancer.check(108.9) == 0
        assert rebalancer.check(109.0) == 1
        (session,) = closed(hub)
        assert session.close_code == CloseCode.CONNECTION_AGED == 4002
        assert rebalancer.check(120.0) == 0  # asked once

    def test_age_limits_spread_over_the_jitter_range(self):
        hub = hub_with(1000)
        rebalancer = Rebalancer(hub, max_age=10.0, jitter=0.5, rng=random.Random(7).random)
        rebalancer.check(0.0)
        per_second = [rebalancer.check(float(t)) for t in range(1, 12)]
        assert sum(per_second[:4]) == 0  # nobody before age x (1 - jitter) = 5 s
        assert sum(per_second[:10]) == 1000  # everybody by the age, 10 s
        assert max(per_second) < 300  # about 200 a second, not all at once

    def test_new_connections_get_their_own_limit(self):
        hub = hub_with(1)
        rebalancer = Rebalancer(hub, max_age=10.0, jitter=0.0)
        rebalancer.check(0.0)
        late = Session(Limits())
        hub.attach(late)
        rebalancer.check(5.0)
        assert rebalancer.check(10.0) == 1
        assert late.close_code is None
        assert rebalancer.check(15.0) == 1
        assert late.close_code == CloseCode.CONNECTION_AGED

    def test_nothing_is_closed_while_the_gateway_drains(self):
        hub = hub_with(3)
        rebalancer = Rebalancer(hub, max_age=1.0, jitter=0.0)
        rebalancer.check(0.0)
        hub.draining = True
        assert rebalancer.check(5.0) == 0
        assert not closed(hub)


class TestSettings:
    def test_max_connection_age_is_off_by_default(self):
        assert Settings().max_connection_age == 0

    @pytest.mark.parametrize(
        ("field", "value"), [("max_connection_age", -1), ("max_connection_age_jitter", 1.0)]
    )
    def test_bad_values_are_refused_with_the_setting_named(self, field, value):
        with pytest.raises(SettingsError, match=field.upper()):
            Settings(**{field: value})


async def test_a_gateway_with_max_connection_age_asks_its_clients_to_reconnect(
    redis_server, gateways
):
    gateway = GatewayProcess.start(gateways, redis_server.url, max_connection_age=1)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "tasks.aged")
    with pytest.raises(ConnectionClosed):
        await recv_json(ws, timeout=5)
    assert ws.close_code == CloseCode.CONNECTION_AGED
    assert "aged" in (ws.close_reason or "")
