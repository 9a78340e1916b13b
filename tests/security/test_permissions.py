"""A token limited to ``tasks.projA.*`` reads projA and nothing of projB: over WebSocket,
SSE and polling, fresh or resuming; tickets carry the same limits, once."""

from __future__ import annotations

import json

import httpx
import pytest

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe
from tests.security.conftest import Keys, start_gateway
from tests.security.streams import open_sse, poll, sse_status
from tests.security.test_tokens import assert_alive, closed_with


@pytest.fixture(scope="module")
def other_gateway(keys, redis_url, package_gateways) -> GatewayProcess:
    """A second gateway on the same Redis: tickets minted on one are good on the other."""
    return start_gateway(package_gateways, redis_url, keys)


async def publish_both(redis_url: str, n: int = 1) -> dict[str, dict[str, object]]:
    """Publish ``n`` messages to projA and projB; the position of each channel."""
    positions = {}
    async with AsyncPublisher(redis_url) as publisher:
        for channel in ("tasks.projA.1", "tasks.projB.1"):
            for i in range(n):
                position = await publisher.publish(channel, {"secret": channel, "n": i})
            positions[channel] = {"offset": position.offset, "epoch": position.epoch}
    return positions


def bearer(keys: Keys, **claims: object) -> dict[str, str]:
    return {"authorization": "Bearer " + keys.token(**claims)}  # type: ignore[arg-type]


async def test_websocket_reads_proj_a_and_is_denied_proj_b_fresh_or_resuming(
    gateway, keys, redis_url
):
    positions = await publish_both(redis_url, 3)
    ws = await open_ws(gateway.ws_url)
    await ws.send(json.dumps({"type": "auth", "token": keys.token()}))
    assert (await recv_json(ws))["type"] == "authenticated"
    await subscribe(ws, "tasks.projA.1")
    b = positions["tasks.projB.1"]
    for since in (None, {"offset": 0, "epoch": b["epoch"]}, b):
        request = {"type": "subscribe", "channel": "tasks.projB.1", "since": since}
        await ws.send(json.dumps(request))
        frame = await recv_json(ws)
        assert (frame["type"], frame["code"]) == ("error", "permission_denied"), frame
    await publish_both(redis_url)
    frame = await recv_json(ws)
    assert (frame["type"], frame["channel"]) == ("message", "tasks.projA.1")
    await assert_alive(ws)  # nothing of projB came in between
    await ws.close()


async def test_sse_with_a_bearer_header_reads_proj_a_and_is_denied_proj_b(gateway, keys, redis_url):
    channels = ("tasks.projA.1", "tasks.projB.1")
    async with (
        httpx.AsyncClient(timeout=10, headers=bearer(keys)) as client,
        open_sse(client, gateway.url, *channels) as stream,
    ):
        a, b = await stream.frames(2)
        assert (a["type"], a["channel"]) == ("subscribed", "tasks.projA.1")
        assert (b["type"], b["code"], b["channel"]) == ("error", "permission_denied", channels[1])
        await publish_both(redis_url)
        (frame,) = await stream.frames(1)
        assert (frame["type"], frame["channel"]) == ("message", "tasks.projA.1")


async def test_sse_resume_of_proj_b_replays_nothing(gateway, keys, redis_url):
    positions = await publish_both(redis_url, 2)
    b = positions["tasks.projB.1"]
    since = f"{b['epoch']}:0"  # all of projB's history, if it were allowed
    async with (
        httpx.AsyncClient(timeout=10, headers=bearer(keys)) as client,
        open_sse(client, gateway.url, "tasks.projB.1", since=since) as stream,
    ):
        (frame,) = await stream.frames(1)
        assert (frame["type"], frame["code"]) == ("error", "permission_denied")


async def test_polling_reads_proj_a_and_is_denied_proj_b_fresh_or_resuming(
    gateway, keys, redis_url
):
    positions = await publish_both(redis_url, 2)
    b = positions["tasks.projB.1"]
    async with httpx.AsyncClient(timeout=10, headers=bearer(keys)) as client:
        frames = await poll(client, gateway.url, "tasks.projA.1", "tasks.projB.1", wait="1")
        kinds = {(f["type"], f.get("channel")) for f in frames}
        assert ("subscribed", "tasks.projA.1") in kinds
        assert ("error", "tasks.projB.1") in kinds
        assert not any(f.get("channel") == "tasks.projB.1" and f["type"] != "error" for f in frames)
        frames = await poll(client, gateway.url, "tasks.projB.1", since=f"{b['epoch']}:0")
        assert [(f["type"], f["code"]) for f in frames] == [("error", "permission_denied")]


async def test_http_transports_refuse_bad_credentials_with_401(gateway, keys):
    async with httpx.AsyncClient(timeout=10) as client:
        for headers in (
            bearer(keys, ttl=-60),
            {"authorization": "Bearer not.a.jwt"},
            {"authorization": "Basic YWxpY2U6c2VjcmV0"},
        ):
            assert await sse_status(client, gateway.url, "tasks.projA.1", headers=headers) == 401
            response = await client.get(
                gateway.url + "/poll", params={"channel": "tasks.projA.1"}, headers=headers
            )
            assert response.status_code == 401
            assert "invalid_token" in response.headers["www-authenticate"]
        response = await client.get(
            gateway.url + "/poll", params={"channel": "tasks.projA.1", "ticket": "made-up"}
        )
        assert response.status_code == 401


async def test_a_ticket_works_once_on_any_gateway_with_its_tokens_limits(
    gateway, other_gateway, keys
):
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(gateway.url + "/auth/ticket", headers=bearer(keys))
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        ticket = response.json()["ticket"]
        assert response.json()["expires_in"] > 0
        async with open_sse(
            client, other_gateway.url, "tasks.projA.1", "tasks.projB.1", ticket=ticket
        ) as stream:
            a, b = await stream.frames(2)
            assert a["type"] == "subscribed" and b["code"] == "permission_denied"
        for base in (other_gateway.url, gateway.url):  # spent: refused everywhere
            response = await client.get(
                base + "/poll", params={"channel": "tasks.projA.1", "ticket": ticket}
            )
            assert response.status_code == 401
        # Minting needs a valid token in the header, nothing else.
        assert (await client.post(gateway.url + "/auth/ticket")).status_code == 401
        expired = bearer(keys, ttl=-60)
        assert (await client.post(gateway.url + "/auth/ticket", headers=expired)).status_code == 401


async def test_refresh_ends_subscriptions_the_new_token_does_not_cover(gateway, keys, redis_url):
    ws = await open_ws(gateway.ws_url)
    wide = keys.token(channels=["tasks.projA.*", "tasks.projB.*"])
    await ws.send(json.dumps({"type": "auth", "token": wide}))
    assert (await recv_json(ws))["type"] == "authenticated"
    await subscribe(ws, "tasks.projA.1")
    await subscribe(ws, "tasks.projB.1")
    await ws.send(json.dumps({"type": "refresh", "token": keys.token()}))
    assert (await recv_json(ws))["type"] == "authenticated"
    assert await recv_json(ws) == {
        "type": "unsubscribed",
        "channel": "tasks.projB.1",
        "reason": "permission_denied",
    }
    await publish_both(redis_url)
    frame = await recv_json(ws)
    assert (frame["type"], frame["channel"]) == ("message", "tasks.projA.1")
    await assert_alive(ws)
    # A refresh may not switch users.
    await ws.send(json.dumps({"type": "refresh", "token": keys.token(sub="mallory")}))
    code, _ = await closed_with(ws)
    assert code == 4501
