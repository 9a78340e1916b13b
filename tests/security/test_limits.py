"""Every limit triggers at its threshold, is counted in /metrics, answers with its
documented status or code, and leaves the gateway serving everyone else."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

import httpx
import pytest

from gateway.limits import ClientAddresses, Gate, TokenBucket
from publisher import Publisher
from publisher.publish import PayloadTooLarge
from shared.settings import Settings
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.rawws import CONT, TEXT, RawWebSocket
from tests.security.conftest import API_KEY, start_gateway
from tests.security.test_tokens import assert_alive

T = TypeVar("T")


def limit_hits(gateway: GatewayProcess, limit: str) -> float:
    """``relaycast_limit_hits_total{limit="..."}`` of one gateway."""
    pattern = rf'^relaycast_limit_hits_total\{{limit="{limit}"\}} (\S+)$'
    match = re.search(pattern, gateway.get("/metrics")[1], re.MULTILINE)
    return float(match.group(1)) if match else 0.0


class TestInProcess:
    def test_token_bucket_allows_a_burst_then_the_rate(self):
        bucket = TokenBucket(rate=2, burst=3)
        assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
        assert bucket.take(0.5) and not bucket.take(0.5)  # 0.5 s at 2/s: one more
        assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]

    def test_forwarded_addresses_count_only_from_trusted_proxies(self):
        addresses = ClientAddresses(["127.0.0.1", "10.0.0.0/8"])
        assert addresses.client("203.0.113.9", ["198.51.100.1"]) == "203.0.113.9"
        assert addresses.client("127.0.0.1", ["198.51.100.1"]) == "198.51.100.1"
        # The nearest untrusted hop: whatever the client wrote further left is not believed.
        assert addresses.client("127.0.0.1", ["1.2.3.4, 198.51.100.1, 10.1.2.3"]) == (
            "198.51.100.1"
        )
        assert addresses.client("127.0.0.1", ["1.2.3.4", "198.51.100.1"]) == "198.51.100.1"
        assert addresses.client("127.0.0.1", []) == "127.0.0.1"
        assert addresses.client("127.0.0.1", ["not-an-address"]) == "127.0.0.1"
        assert ClientAddresses([]).client("127.0.0.1", ["198.51.100.1"]) == "127.0.0.1"

    def test_gate_counts_per_address_and_per_gateway(self):
        gate = Gate(Settings(max_connections=3, max_connections_per_address=2, handshake_rate=0))
        assert gate.admit("a", 0) is None and gate.admit("a", 0) is None
        refusal = gate.admit("a", 0)
        assert refusal is not None and (refusal.status, refusal.limit) == (
            429,
            "connections_per_address",
        )
        assert gate.admit("b", 0) is None
        refusal = gate.admit("c", 0)
        assert refusal is not None and (refusal.status, refusal.limit) == (503, "connections")
        gate.release("a")
        assert gate.admit("c", 0) is None
        assert gate.by_address == {"a": 1, "b": 1, "c": 1}


# --- against live gateways -------------------------------------------------------------------


@pytest.fixture(scope="module")
def crowded(keys, redis_url, package_gateways) -> GatewayProcess:
    """At most 6 connections, 2 per client address; 127.0.0.1 is a trusted proxy, so the
    tests play clients at other addresses through ``X-Forwarded-For``."""
    return start_gateway(
        package_gateways,
        redis_url,
        keys,
        max_connections=6,
        max_connections_per_address=2,
        trusted_proxies="127.0.0.1",
        handshake_rate=0,
    )


@pytest.fixture(scope="module")
def strict(keys, redis_url, package_gateways) -> GatewayProcess:
    """Tight per-connection limits and a handshake rate of 3 per second."""
    return start_gateway(
        package_gateways,
        redis_url,
        keys,
        handshake_rate=3,
        frame_rate=1,
        frame_burst=10,
        max_subscriptions=3,
        max_frame_bytes=1024,
        max_payload_bytes=1000,
    )


def forwarded(address: str) -> str:
    return f"X-Forwarded-For: {address}\r\n"


async def status_of(port: int, address: str, held: list[RawWebSocket]) -> int:
    """Open a WebSocket as ``address``: 101 (and it stays open, in ``held``), or the
    status it was refused with."""
    try:
        ws = await RawWebSocket.connect(port, headers=forwarded(address))
    except ConnectionRefusedError as exc:
        return int(str(exc).rsplit(" ", 1)[1])
    held.append(ws)
    return 101


@pytest.fixture
async def held() -> AsyncIterator[list[RawWebSocket]]:
    """Connections a test keeps open; closed after it."""
    sockets: list[RawWebSocket] = []
    yield sockets
    for ws in sockets:
        await ws.close()


async def test_connections_per_address_and_per_gateway(crowded, held):
    port = crowded.port
    assert [await status_of(port, "198.51.100.1", held) for _ in range(3)] == [101, 101, 429]
    assert limit_hits(crowded, "connections_per_address") == 1
    async with httpx.AsyncClient(timeout=10) as client:  # polls count too
        headers = {"x-forwarded-for": "198.51.100.1"}
        params = {"channel": "public.news", "wait": "0"}
        response = await client.get(crowded.url + "/poll", params=params, headers=headers)
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
    # Other addresses are served, up to the gateway's limit of 6.
    assert [await status_of(port, "198.51.100.2", held) for _ in range(2)] == [101, 101]
    assert [await status_of(port, "198.51.100.3", held) for _ in range(2)] == [101, 101]
    assert await status_of(port, "198.51.100.4", held) == 503
    assert limit_hits(crowded, "connections") == 1
    # Everyone admitted is still served; one leaving makes room.
    for ws in held:
        await ws.send_text('{"type":"ping","id":5}')
        assert json.loads((await ws.read_frame())[1]) == {"type": "pong", "id": 5}
    await held.pop().close()
    await wait_until(lambda: crowded.metric("relaycast_connections") == 5, 10, "a release")
    assert await status_of(port, "198.51.100.4", held) == 101


async def test_handshake_rate(strict, held):
    await asyncio.sleep(1.1)  # let the bucket refill from earlier tests
    attempts = [status_of(strict.port, "127.0.0.1", held) for _ in range(4)]
    statuses = await asyncio.gather(*attempts)  # at once: no time for the bucket to refill
    assert sorted(statuses) == [101, 101, 101, 429]
    assert limit_hits(strict, "handshake_rate") >= 1
    await asyncio.sleep(0.5)  # 1.5 handshakes' worth
    assert await status_of(strict.port, "127.0.0.1", held) == 101
    for ws in held:  # the connections already open are unaffected
        await ws.send_text('{"type":"ping","id":1}')
        assert json.loads((await ws.read_frame())[1])["type"] == "pong"


async def paced(connect: Awaitable[T]) -> T:
    """Connect to ``strict`` once its handshake bucket (3 per second) has a token again."""
    await asyncio.sleep(0.35)
    return await connect


async def fresh_connection_is_served(gateway: GatewayProcess) -> None:
    ws = await paced(open_ws(gateway.ws_url))
    await subscribe(ws, "public.after")
    await assert_alive(ws)
    await ws.close()


async def test_frame_rate_closes_with_4029_after_the_burst(strict):
    ws = await paced(RawWebSocket.connect(strict.port))
    for i in range(10):
        await ws.send_text(json.dumps({"type": "ping", "id": i}))
    for i in range(10):
        assert json.loads((await ws.read_frame())[1]) == {"type": "pong", "id": i}
    await ws.send_text('{"type":"ping","id":10}')
    code, _ = await ws.read_until_close()
    assert code == 4029
    assert limit_hits(strict, "frame_rate") >= 1
    await ws.close()
    await fresh_connection_is_served(strict)


async def test_a_flood_of_empty_fragments_counts_against_the_frame_rate(strict):
    ws = await paced(RawWebSocket.connect(strict.port))
    ws.send_frame(TEXT, b"", fin=False)
    for _ in range(200):
        ws.send_frame(CONT, b"", fin=False)
    with contextlib.suppress(ConnectionError):
        await ws.writer.drain()
    code, _ = await ws.read_until_close()
    assert code == 4029
    await ws.close()


async def test_subscriptions_per_connection(strict):
    ws = await paced(open_ws(strict.ws_url))
    for n in range(3):
        await subscribe(ws, f"public.s{n}")
    before = limit_hits(strict, "subscriptions")
    await ws.send(json.dumps({"type": "subscribe", "channel": "public.s3"}))
    frame = await recv_json(ws)
    assert (frame["type"], frame["code"]) == ("error", "too_many_subscriptions")
    assert limit_hits(strict, "subscriptions") == before + 1
    await ws.close()


async def test_frame_size_closes_with_1009(strict):
    ws = await paced(RawWebSocket.connect(strict.port))
    ws.send_frame(TEXT, b'{"type":"ping","pad":"' + b"x" * 1100 + b'"}')
    code, _ = await ws.read_until_close()
    assert code == 1009
    await ws.close()
    await wait_until(lambda: limit_hits(strict, "frame_size") == 1, 5, "frame_size counted")
    await fresh_connection_is_served(strict)


async def test_payload_size_in_the_api_and_the_publisher_library(strict, redis_url):
    headers = {"authorization": "Bearer " + API_KEY}
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        url = strict.url + "/api/publish"
        small = {"channel": "public.news", "data": "x" * 900}
        assert (await client.post(url, json=small)).status_code == 200
        large = {"channel": "public.news", "data": "x" * 1100}
        assert (await client.post(url, json=large)).status_code == 413
    assert limit_hits(strict, "payload_size") == 1
    settings = Settings(redis_url=redis_url, max_payload_bytes=1000)
    with Publisher(settings=settings) as publisher:
        publisher.publish("public.news", "x" * 900)
        with pytest.raises(PayloadTooLarge):
            publisher.publish("public.news", "x" * 1100)
