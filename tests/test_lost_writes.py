"""After Redis loses acknowledged writes (a lossy failover), offsets are not reused.

A replica promoted before it received the last writes hands their offsets out again in
the same epoch. A gateway that notices — the channel's head fell behind what it already
delivered, or the message at its last offset is a different one — starts a new epoch, so
subscribers are told ``recovered: false`` instead of silently missing new messages.

The failover is simulated on one real Redis (the writes are removed by hand), and the
hub runs in this process with a real Redis broker so the test decides when it resyncs.
"""

from __future__ import annotations

import asyncio
import json

import redis.asyncio as aioredis

from gateway.commands import Limits
from gateway.hub import Hub
from gateway.session import Session
from publisher import AsyncPublisher
from shared.broker.redis import RedisBroker
from shared.broker.redis_base import LinkOptions
from shared.settings import Settings
from tests.helpers import wait_until

CHANNEL = "tasks.failover"


async def start(url: str) -> tuple[Hub, RedisBroker, Session, AsyncPublisher]:
    settings = Settings.load({"redis_url": url}, env={})
    broker = RedisBroker(url, LinkOptions(name="lost-writes-test"))
    hub = Hub(broker, settings)
    await broker.start(hub)
    await wait_until(lambda: broker.up, 10, "broker up")
    session = Session(Limits())
    hub.attach(session)
    session.receive(json.dumps({"type": "subscribe", "channel": CHANNEL}))
    await hub.subscribe(session, CHANNEL, None)
    return hub, broker, session, AsyncPublisher(url)


def frames(session: Session) -> list[dict]:
    return [json.loads(f.json) for f in session.take()]


async def lose_last_writes(url: str, keep: int) -> None:
    """Leave what a replica promoted before the last writes reached it would have: the
    channel's head at ``keep`` and its stream as it was then (rebuilt, since a stream
    remembers the highest ID it ever had)."""
    meta, stream = f"rc:{{{CHANNEL}}}:m", f"rc:{{{CHANNEL}}}:s"
    async with aioredis.Redis.from_url(url) as r:
        kept = await r.xrange(stream, "-", f"{keep}-0")
        async with r.pipeline(transaction=True) as tx:
            tx.hset(meta, "o", keep)
            tx.delete(stream)
            for entry_id, fields in kept:
                tx.xadd(stream, fields, id=entry_id)
            await tx.execute()


async def test_a_head_behind_what_was_delivered_starts_a_new_epoch(redis_server):
    hub, broker, session, publisher = await start(redis_server.url)
    first = frames(session)[0]
    for n in range(1, 11):
        await publisher.publish(CHANNEL, {"n": n})
    await wait_until(lambda: len(session.outbox) >= 10, 10, "ten messages")
    assert [f["offset"] for f in frames(session)] == list(range(1, 11))

    hub.on_broker_state(False)  # the link to the old primary is gone
    await lose_last_writes(redis_server.url, keep=8)
    hub.on_broker_state(True)  # connected to the promoted replica
    await wait_until(lambda: len(session.outbox) >= 1, 10, "the notice")
    notice = frames(session)[0]
    assert notice["type"] == "subscribed" and notice["recovered"] is False
    assert notice["epoch"] != first["epoch"] and notice["offset"] == 8

    position = await publisher.publish(CHANNEL, {"n": "new"})
    assert (position.offset, position.epoch) == (9, notice["epoch"])
    await wait_until(lambda: len(session.outbox) >= 1, 10, "the new message")
    assert frames(session) == [
        {"type": "message", "channel": CHANNEL, "offset": 9, "data": {"n": "new"}}
    ]
    await publisher.close()
    await broker.close()


async def test_reused_offsets_already_published_are_caught_by_their_content(redis_server):
    hub, broker, session, publisher = await start(redis_server.url)
    for n in range(1, 11):
        await publisher.publish(CHANNEL, {"n": n})
    await wait_until(lambda: len(session.outbox) >= 11, 10, "subscribed and ten messages")
    session.take()

    hub.on_broker_state(False)
    await lose_last_writes(redis_server.url, keep=8)
    for n in ("a", "b", "c"):  # offsets 9, 10, 11 again, before the gateway looks
        await publisher.publish(CHANNEL, {"n": n})
    await asyncio.sleep(0.2)  # they reach the hub live, and are held
    assert len(session.outbox) == 0
    hub.on_broker_state(True)
    await wait_until(lambda: len(session.outbox) >= 1, 10, "the notice")
    got = frames(session)
    assert got[0]["type"] == "subscribed" and got[0]["recovered"] is False
    assert got[0]["offset"] == 11 and len(got) == 1  # reload: nothing of the old epoch
    position = await publisher.publish(CHANNEL, {"n": "d"})
    assert position.epoch == got[0]["epoch"]
    await wait_until(lambda: len(session.outbox) >= 1, 10, "the next message")
    assert [f["data"]["n"] for f in frames(session)] == ["d"]
    await publisher.close()
    await broker.close()
