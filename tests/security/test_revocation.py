"""Revocation: a token revoked by its ``jti``, or a user's tokens revoked (or the user
disconnected), on one gateway's API, are refused by every gateway within a second, and
the open connections they hold end with 4501: WebSocket, SSE and tickets alike."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.helpers import GatewayProcess, subscribe
from tests.security.conftest import API_KEY, start_gateway
from tests.security.streams import open_sse
from tests.security.test_expiry import authenticated_ws
from tests.security.test_tokens import assert_alive, closed_with

ADMIN = {"authorization": "Bearer " + API_KEY}


@pytest.fixture(scope="module")
def pair(keys, redis_url, package_gateways) -> tuple[GatewayProcess, GatewayProcess]:
    """Two gateways on the package's Redis: revoke through one, watch the other."""
    return (
        start_gateway(package_gateways, redis_url, keys),
        start_gateway(package_gateways, redis_url, keys),
    )


async def refused(gateway: GatewayProcess, token: str) -> bool:
    """Whether ``gateway`` refuses ``token`` (a poll with it as bearer gets 401)."""
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            gateway.url + "/poll",
            params={"channel": "tasks.projA.r", "wait": "0"},
            headers={"authorization": "Bearer " + token},
        )
    assert response.status_code in (200, 401), response.text
    return response.status_code == 401


async def test_a_revoked_token_closes_its_connections_on_every_gateway(pair, keys):
    a, b = pair
    leaked = keys.token(sub="carol", jti="leaked-1")
    other = keys.token(sub="carol", jti="kept-1")
    ws = await authenticated_ws(b.ws_url, leaked)
    await subscribe(ws, "tasks.projA.r")
    kept = await authenticated_ws(b.ws_url, other)
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:
        ticket = (
            await client.post(a.url + "/auth/ticket", headers={"authorization": "Bearer " + leaked})
        ).json()["ticket"]
        async with (
            httpx.AsyncClient(
                timeout=10, headers={"authorization": "Bearer " + leaked}
            ) as sse_client,
            open_sse(sse_client, b.url, "tasks.projA.r") as stream,
        ):
            assert (await stream.frames(1))[0]["type"] == "subscribed"
            body = {"jti": "leaked-1", "expires": time.time() + 300}
            response = await client.post(a.url + "/api/revocations/tokens", json=body)
            assert response.status_code == 200, response.text
            started = time.monotonic()
            code, _ = await closed_with(ws, timeout=10)
            assert code == 4501
            assert time.monotonic() - started < 3  # "within a second", with room for a slow VM
            close = (await stream.frames(1))[0]
            assert (close["type"], close["code"]) == ("close", 4501)
        listed = (await client.get(b.url + "/api/revocations")).json()
        assert [t["jti"] for t in listed["tokens"]] == ["leaked-1"]
        ticket_poll = await client.get(
            b.url + "/poll", params={"channel": "tasks.projA.r", "ticket": ticket, "wait": "0"}
        )
        assert ticket_poll.status_code == 401
    assert await refused(b, leaked), b.log_tail()
    assert await refused(a, leaked), a.log_tail()
    assert not await refused(a, other)
    await assert_alive(kept)  # the same user's other token is untouched
    await kept.close()
    assert b.metric("relaycast_revoked_connections_total") >= 2
    assert a.metric("relaycast_revocations_total") >= 1
    for gateway in pair:
        assert leaked not in gateway.log_path.read_text(errors="replace")


async def test_disconnecting_a_user_cuts_every_connection_and_older_token(pair, keys):
    a, b = pair
    old = keys.token(sub="dave", jti="dave-1")
    connections = [await authenticated_ws(g.ws_url, old) for g in pair]
    bystander = await authenticated_ws(b.ws_url, keys.token(sub="erin"))
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:
        response = await client.post(a.url + "/api/users/dave/disconnect")
        assert response.status_code == 200, response.text
        cut_at = response.json()["issued_before"]
        for ws in connections:
            code, _ = await closed_with(ws, timeout=10)
            assert code == 4501
        assert await refused(b, old)
        # A token issued after the cut works (iat is in whole seconds).
        await asyncio.sleep(max(0.0, int(cut_at) + 1.05 - time.time()))
        fresh = keys.token(sub="dave", jti="dave-2")
        assert not await refused(b, fresh)
        # Lifting the revocation lets the old token in again.
        listed = (await client.get(a.url + "/api/revocations")).json()
        assert {"sub": "dave", "issued_before": cut_at} in listed["users"]
        assert (await client.delete(a.url + "/api/revocations/users/dave")).status_code == 200
        assert (await client.delete(a.url + "/api/revocations/users/dave")).status_code == 404

        async def lifted() -> bool:
            return not await refused(b, old)

        deadline = time.monotonic() + 10
        while not await lifted():
            assert time.monotonic() < deadline, "the lifted revocation never reached b"
            await asyncio.sleep(0.1)
    await assert_alive(bystander)
    await bystander.close()


async def test_revoking_a_user_with_a_time_spares_later_tokens(pair, keys):
    a, b = pair
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:
        body = {"sub": "frank", "issued_before": time.time() - 60}
        assert (await client.post(a.url + "/api/revocations/users", json=body)).status_code == 200
        ancient = keys.token(sub="frank", iat=int(time.time()) - 120)
        current = keys.token(sub="frank")
        deadline = time.monotonic() + 10
        while not await refused(b, ancient):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        assert not await refused(b, current)
        ws = await authenticated_ws(b.ws_url, current)
        await ws.send(json.dumps({"type": "refresh", "token": ancient}))
        code, _ = await closed_with(ws, timeout=10)
        assert code == 4501


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/revocations/tokens", {"jti": ""}),
        ("/api/revocations/tokens", {"jti": "x", "expires": -1}),
        ("/api/revocations/users", {"sub": "x" * 300}),
        ("/api/revocations/users", {}),
    ],
)
async def test_malformed_revocations_get_422(pair, path, body):
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:
        response = await client.post(pair[0].url + path, json=body)
    assert response.status_code == 422, response.text


async def test_revocation_needs_the_api_key(pair):
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(pair[0].url + "/api/users/dave/disconnect")
    assert response.status_code == 401
