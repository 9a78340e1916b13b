"""The Hub on the memory broker, in this process: no Redis, no sockets, no gateway.

The test stands between the broker and the hub (:class:`Link`), so it decides which live
publications the hub hears: losing some opens a gap, as pub/sub does while a link
reconnects. Sessions are fed and drained directly, as a transport would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from gateway.hub import Hub
from gateway.session import Session
from shared.broker.memory import MemoryBroker
from shared.protocol import Publication
from shared.settings import Settings
from tests.helpers import wait_until

CHANNEL = "tasks.hub"


class Link:
    """The broker's event handler seen by the hub, able to lose live publications."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.lose = 0

    def on_publication(self, channel: str, publication: Publication) -> None:
        if self.lose:
            self.lose -= 1
            return
        self.hub.on_publication(channel, publication)

    def on_broker_state(self, up: bool) -> None:
        self.hub.on_broker_state(up)


class Rig:
    def __init__(self, **settings: object) -> None:
        self.settings = Settings.load({"redis_url": "memory://", **settings}, env={})
        self.broker = MemoryBroker()
        self.hub = Hub(self.broker, self.settings)
        self.link = Link(self.hub)

    async def publish(self, n: int) -> None:
        options = self.settings.channel_options(CHANNEL)
        await self.broker.publish(CHANNEL, json.dumps({"n": n}), options, 1.0)

    async def join(self) -> Session:
        """A session subscribed to the channel, with its ``subscribed`` frame taken."""
        session = Session(self.hub.limits)
        self.hub.attach(session)
        command = session.receive(json.dumps({"type": "subscribe", "channel": CHANNEL}))
        assert command is not None
        await self.hub.run(session, command)
        assert [f["type"] for f in frames(session)] == ["subscribed"]
        return session


def frames(session: Session) -> list[dict]:
    return [json.loads(f.json) for f in session.take()]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    await rig.broker.start(rig.link)
    yield rig
    await rig.hub.close()
    await rig.broker.close()


async def test_a_gap_in_live_publications_is_filled_from_history_in_order(rig):
    session = await rig.join()
    await rig.publish(1)
    rig.link.lose = 3  # 2, 3 and 4 never reach the hub live
    for n in range(2, 6):
        await rig.publish(n)
    got: list[dict] = []
    await wait_until(lambda: bool(got.extend(frames(session))) or len(got) >= 5, 10, "1..5")
    assert [(f["type"], f["offset"]) for f in got] == [("message", n) for n in range(1, 6)]
    await rig.publish(6)  # back in step: live again
    assert [f["offset"] for f in frames(session)] == [6]


async def test_a_new_epoch_tells_subscribers_recovered_false_and_delivery_goes_on(rig):
    session = await rig.join()
    for n in (1, 2):
        await rig.publish(n)
    old = rig.hub.channels[CHANNEL].epoch
    assert [f["offset"] for f in frames(session)] == [1, 2]
    options = rig.settings.channel_options(CHANNEL)
    # A new stream (as after a lossy failover, when a gateway renews the epoch).
    new = (await rig.broker.renew_epoch(CHANNEL, options, old)).epoch
    await rig.publish(3)
    got: list[dict] = []
    await wait_until(lambda: bool(got.extend(frames(session))) or len(got) >= 4, 10, "notice")
    notice, *messages = got
    assert notice == {
        "type": "subscribed",
        "channel": CHANNEL,
        "offset": 0,
        "epoch": new,
        "recovered": False,
    }
    # The stream is read again from its start: what history holds, in order, then live.
    assert [m["offset"] for m in messages] == [1, 2, 3]
    await rig.publish(4)
    assert [f["offset"] for f in frames(session)] == [4]
    assert rig.hub.channels[CHANNEL].epoch == new


async def test_a_backlog_larger_than_the_outbox_is_paced_by_the_reader():
    rig = Rig(outbox_messages=8, replay_batch=50)
    await rig.broker.start(rig.link)
    try:
        session = await rig.join()
        rig.link.lose = 40  # a long reconnect gap: 1..40 come from history
        for n in range(1, 42):
            await rig.publish(n)
        got: list[int] = []

        def read() -> bool:
            assert len(session.outbox) <= 8  # never more than the outbox holds
            got.extend(f["offset"] for f in frames(session))
            return len(got) >= 41

        await wait_until(read, 20, "the whole backlog")
        assert session.close_code is None  # caught up, not cut off as a slow consumer
        assert got == list(range(1, 42))
        await rig.publish(42)
        await wait_until(lambda: len(session.outbox) > 0, 10, "live")
        assert [f["offset"] for f in frames(session)] == [42]
    finally:
        await rig.hub.close()
        await rig.broker.close()
