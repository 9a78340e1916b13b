"""Resume by position: exactly the missed messages, then live; or an explicit 'not recovered'."""

from __future__ import annotations

import asyncio
import json

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe

NAMESPACES = json.dumps(
    [
        {"pattern": "short.*", "history_size": 50},
        {"pattern": "resume.*", "history_size": 5000},
        {"pattern": "young.*", "history_ttl": 1},
        {"pattern": "*"},
    ]
)


def gateway(gateways, url: str, **settings) -> GatewayProcess:
    return GatewayProcess.start(gateways, url, namespaces=NAMESPACES, **settings)


async def publish(url: str, channel: str, numbers) -> None:
    async with AsyncPublisher(url) as publisher:
        for n in numbers:
            await publisher.publish(channel, {"n": n})


async def test_a_large_backlog_replays_exactly_while_publishing_goes_on(
    redis_server, gateways, monkeypatch
):
    monkeypatch.setenv("RELAYCAST_NAMESPACES", NAMESPACES)
    gw = gateway(gateways, redis_server.url, replay_batch=100, outbox_messages=64)
    ws = await open_ws(gw.ws_url)
    start = await subscribe(ws, "resume.big")
    await ws.close()
    await publish(redis_server.url, "resume.big", range(1, 2001))  # missed while away

    ws = await open_ws(gw.ws_url)
    since = {"offset": start["offset"], "epoch": start["epoch"]}
    later = asyncio.create_task(publish(redis_server.url, "resume.big", range(2001, 2301)))
    answer = await subscribe(ws, "resume.big", since)
    assert answer["recovered"] is True and answer["offset"] == 0
    got = []
    while len(got) < 2300:
        frame = await recv_json(ws, timeout=30)
        assert frame["type"] == "message", frame
        got.append((frame["offset"], frame["data"]["n"]))
    await later
    assert got == [(n, n) for n in range(1, 2301)]
    assert gw.metric("relaycast_replayed_messages_total") >= 2000
    await ws.close()


async def test_resume_past_the_history_length_is_not_recovered(redis_server, gateways, monkeypatch):
    monkeypatch.setenv("RELAYCAST_NAMESPACES", NAMESPACES)
    gw = gateway(gateways, redis_server.url)
    await publish(redis_server.url, "short.x", range(1, 101))  # history keeps 51..100
    ws = await open_ws(gw.ws_url)
    epoch = (await subscribe(ws, "short.x"))["epoch"]
    await ws.close()
    ws = await open_ws(gw.ws_url)
    answer = await subscribe(ws, "short.x", {"offset": 10, "epoch": epoch})
    assert answer["recovered"] is False and answer["offset"] == 100
    ok = await subscribe(ws, "other.y")
    assert "recovered" not in ok  # a fresh subscribe is not a resume
    await ws.close()
    ws = await open_ws(gw.ws_url)  # from inside the history: recovered
    answer = await subscribe(ws, "short.x", {"offset": 60, "epoch": epoch})
    assert answer["recovered"] is True and answer["replayed"] == 40
    assert [(await recv_json(ws))["offset"] for _ in range(40)] == list(range(61, 101))
    await ws.close()


async def test_resume_from_another_epoch_or_beyond_the_cap_is_not_recovered(redis_server, gateways):
    gw = gateway(gateways, redis_server.url, replay_cap=20)
    await publish(redis_server.url, "capped.x", range(1, 31))
    ws = await open_ws(gw.ws_url)
    epoch = (await subscribe(ws, "capped.x"))["epoch"]
    other = await subscribe(ws, "capped.y", {"offset": 3, "epoch": "not-" + epoch})
    assert other["recovered"] is False
    await ws.close()
    ws = await open_ws(gw.ws_url)
    answer = await subscribe(ws, "capped.x", {"offset": 5, "epoch": epoch})  # 25 > cap 20
    assert answer["recovered"] is False and answer["offset"] == 30
    await ws.close()


async def test_messages_older_than_the_age_bound_leave_history(redis_server, gateways, monkeypatch):
    monkeypatch.setenv("RELAYCAST_NAMESPACES", NAMESPACES)
    gw = gateway(gateways, redis_server.url)
    await publish(redis_server.url, "young.x", range(1, 4))
    ws = await open_ws(gw.ws_url)
    epoch = (await subscribe(ws, "young.x"))["epoch"]
    await ws.close()
    await asyncio.sleep(1.5)  # older than the channel's one-second bound
    await publish(redis_server.url, "young.x", [4])
    ws = await open_ws(gw.ws_url)
    answer = await subscribe(ws, "young.x", {"offset": 0, "epoch": epoch})
    assert answer["recovered"] is False  # 1..3 aged out
    await ws.close()


async def test_a_reconnect_storm_of_resumes_is_served_not_refused(redis_server, gateways):
    gw = gateway(gateways, redis_server.url)
    await publish(redis_server.url, "storm.x", range(1, 101))
    ws = await open_ws(gw.ws_url)
    epoch = (await subscribe(ws, "storm.x"))["epoch"]
    await ws.close()
    crowd = await asyncio.gather(*(open_ws(gw.ws_url) for _ in range(300)))
    since = {"offset": 0, "epoch": epoch}
    request = json.dumps({"type": "subscribe", "channel": "storm.x", "since": since})
    await asyncio.gather(*(ws.send(request) for ws in crowd))  # all at the same moment
    answers = await asyncio.gather(*(recv_json(ws, timeout=60) for ws in crowd))
    refused = [a for a in answers if a["type"] != "subscribed" or not a["recovered"]]
    assert not refused, f"{len(refused)} of 300 resumes refused, e.g. {refused[0]}"
    await asyncio.gather(*(ws.close() for ws in crowd))
