"""No log line contains a token, a ticket, an API key or a key: a gateway logging at debug
level goes through every path that handles them, good and bad, and its log is searched."""

from __future__ import annotations

import contextlib
import json

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.helpers import open_ws, recv_json
from tests.security.conftest import API_KEY, SECRET, start_gateway
from tests.security.streams import open_sse


async def test_no_log_line_contains_a_token_or_key(keys, redis_url, package_gateways):
    gateway = start_gateway(package_gateways, redis_url, keys, log_level="debug")
    good, expired = keys.token(alg="ES256"), keys.token(ttl=-60)
    foreign = keys.token(key="another-secret-" + "x" * 32)
    wrong_key = "wrong-api-key-" + "w" * 20
    secrets_seen = [good, expired, foreign, API_KEY, SECRET, wrong_key]

    ws = await open_ws(gateway.ws_url, subprotocols=["relaycast", "bearer." + good])
    assert (await recv_json(ws))["type"] == "authenticated"
    await ws.send(json.dumps({"type": "refresh", "token": good}))
    await ws.send(json.dumps({"type": "refresh", "token": foreign}))
    with contextlib.suppress(ConnectionClosed):
        while True:
            await recv_json(ws)
    for token in (expired, foreign, "garbage." + SECRET):
        ws = await open_ws(gateway.ws_url)
        await ws.send(json.dumps({"type": "auth", "token": token}))
        with contextlib.suppress(ConnectionClosed):
            await recv_json(ws)
    with contextlib.suppress(InvalidStatus):  # a refused origin, token in the handshake
        await open_ws(
            gateway.ws_url, origin="https://evil.example", subprotocols=["bearer." + good]
        )

    async with httpx.AsyncClient(timeout=10) as client:
        for token in (good, expired):
            headers = {"authorization": "Bearer " + token}
            await client.get(
                gateway.url + "/poll", params={"channel": "x", "wait": 0}, headers=headers
            )
        response = await client.post(
            gateway.url + "/auth/ticket", headers={"authorization": "Bearer " + good}
        )
        ticket = response.json()["ticket"]
        secrets_seen.append(ticket)
        async with open_sse(client, gateway.url, "tasks.projA.1", ticket=ticket) as stream:
            await stream.frames(1)
        await client.get(gateway.url + "/poll", params={"channel": "x", "ticket": ticket})
        for key in (API_KEY, wrong_key):
            await client.post(
                gateway.url + "/api/publish",
                json={"channel": "public.news", "data": 1},
                headers={"authorization": "Bearer " + key},
            )

    gateway.signal(2)  # SIGINT: drain and exit, flushing the log
    gateway.wait_exit(30)
    log = gateway.log_path.read_text()
    # It logged those paths (at debug level), just not the secrets.
    assert "token refused (signature)" in log and "token refused (expired)" in log
    assert "ticket refused" in log
    for secret in secrets_seen:
        for part in [secret, *secret.split(".")]:
            if len(part) >= 16:
                assert part not in log, f"a secret ({part[:6]}...) is in the gateway's log"
