"""Limits a hostile client used to get around: half-sent requests that held sockets
forever, ticket requests without credentials that spent everyone's handshakes, polls
without a rate, poll responses past the outbox bound, and frame-rate hits counted after
a connection had closed."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers import GatewayProcess, open_ws
from tests.rawws import PING, RawWebSocket
from tests.security.conftest import API_KEY, start_gateway
from tests.security.test_limits import limit_hits


@pytest.fixture(scope="module")
def hardened(keys, redis_url, package_gateways) -> GatewayProcess:
    """Incomplete requests time out after 1 s and at most 20 wait; 20 handshakes a second,
    3 per address (127.0.0.1 is a trusted proxy: tests play other addresses); polls at
    1 per second, 3 at once; a 64 KiB outbox; 10 frames at once, then 1 per second."""
    return start_gateway(
        package_gateways,
        redis_url,
        keys,
        header_timeout=1,
        max_pending_connections=20,
        handshake_rate=20,
        handshake_rate_per_address=3,
        trusted_proxies="127.0.0.1",
        poll_rate=1,
        poll_burst=3,
        outbox_bytes=65536,
        frame_rate=1,
        frame_burst=10,
    )


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float) -> bool:
    """Whether the gateway closes the connection within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while await reader.read(4096):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


@contextlib.asynccontextmanager
async def half_sent(
    port: int, count: int, head: bytes
) -> AsyncIterator[list[asyncio.StreamReader]]:
    """``count`` connections that each sent ``head`` and then nothing more."""
    writers: list[asyncio.StreamWriter] = []
    readers: list[asyncio.StreamReader] = []
    try:
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            readers.append(reader)
            writers.append(writer)
        yield readers
    finally:
        for writer in writers:
            writer.close()


async def test_half_sent_requests_time_out_and_are_capped(hardened):
    """245 sockets that sent ``GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n`` and stopped stayed
    open past 65 s, /readyz counted none, and accept() ran out of descriptors."""
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
    async with half_sent(hardened.port, 30, head) as readers:
        async with httpx.AsyncClient(timeout=5) as client:
            assert (await client.get(hardened.url + "/healthz")).status_code == 200
            ready = (await client.get(hardened.url + "/readyz")).json()
        assert 1 <= ready["pending_connections"] <= 20
        assert limit_hits(hardened, "pending_connections") >= 10
        closed = await asyncio.gather(*(closed_by_peer(r, 10) for r in readers))
        assert all(closed)
    assert limit_hits(hardened, "header_timeout") >= 1
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.get(hardened.url + "/readyz")).json()["pending_connections"] == 0


async def test_silent_connections_and_unfinished_bodies_time_out(hardened):
    body_head = (
        b"POST /api/publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b'\r\nContent-Length: 100\r\n\r\n{"ch'
    )
    async with (
        half_sent(hardened.port, 1, b"") as silent,
        half_sent(hardened.port, 1, body_head) as unfinished,
    ):
        assert await closed_by_peer(silent[0], 10)
        assert await closed_by_peer(unfinished[0], 10)


async def test_a_kept_alive_connection_serves_requests_after_its_first(hardened):
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(3):
            assert (await client.get(hardened.url + "/healthz")).status_code == 200
            await asyncio.sleep(0.6)  # together longer than the header timeout


async def ws_status(port: int, address: str) -> int:
    try:
        ws = await RawWebSocket.connect(port, headers=f"X-Forwarded-For: {address}\r\n")
    except ConnectionRefusedError as exc:
        return int(str(exc).rsplit(" ", 1)[1])
    await ws.close()
    return 101


async def test_ticket_requests_without_credentials_spend_no_handshakes(hardened):
    """About 40 requests a second without Authorization at HANDSHAKE_RATE=20 made valid
    upgrades get 429."""
    # At most 10 sockets at once: this gateway lets only 20 wait for their request.
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=10)) as client:
        for burst in range(2):
            answers = await asyncio.gather(
                *(client.post(hardened.url + "/auth/ticket") for _ in range(40))
            )
            assert {r.status_code for r in answers} == {401}, burst
            assert await ws_status(hardened.port, f"198.51.100.{10 + burst}") == 101


async def test_each_address_gets_its_own_share_of_handshakes(hardened, keys):
    await asyncio.sleep(1.1)  # every bucket full again
    bearer = {"authorization": "Bearer " + keys.token(sub="greedy")}
    async with httpx.AsyncClient(timeout=5) as client:
        greedy = {**bearer, "x-forwarded-for": "198.51.100.20"}
        answers = [
            (await client.post(hardened.url + "/auth/ticket", headers=greedy)).status_code
            for _ in range(6)
        ]
        assert answers[:3] == [200, 200, 200] and 429 in answers[3:]
        assert limit_hits(hardened, "handshake_share") >= 1
        other = {**bearer, "x-forwarded-for": "198.51.100.21"}
        assert (await client.post(hardened.url + "/auth/ticket", headers=other)).status_code == 200
    assert await ws_status(hardened.port, "198.51.100.22") == 101


async def test_polls_have_a_rate_per_client(hardened, keys):
    fast = {"authorization": "Bearer " + keys.token(sub="fast-poller")}
    slow = {"authorization": "Bearer " + keys.token(sub="slow-poller")}
    params = {"channel": "tasks.projA.rate", "wait": "0"}
    async with httpx.AsyncClient(timeout=5) as client:
        statuses = [
            (await client.get(hardened.url + "/poll", params=params, headers=fast)).status_code
            for _ in range(5)
        ]
        assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
        refused = await client.get(hardened.url + "/poll", params=params, headers=fast)
        assert refused.headers["retry-after"] == "1"
        assert limit_hits(hardened, "poll_rate") >= 3
        # Another user is not slowed down by this one.
        response = await client.get(hardened.url + "/poll", params=params, headers=slow)
        assert response.status_code == 200


async def test_one_poll_response_stays_within_the_outbox_bound(hardened, keys):
    """Subscribing several channels from their start filled a response with one outbox's
    worth per channel (2-4 MB). Now each response stays under the bound, and following
    the cursors returned still brings every message, in order."""
    channels = [f"tasks.projA.bulk{n}" for n in range(8)]
    api = {"authorization": "Bearer " + API_KEY}
    epochs = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for channel in channels:
            for i in range(40):
                body = {"channel": channel, "data": {"i": i, "pad": "x" * 1000}}
                response = await client.post(hardened.url + "/api/publish", json=body, headers=api)
                epochs[channel] = response.json()["epoch"]
        bearer = {"authorization": "Bearer " + keys.token(sub="bulk-reader")}
        since = ",".join(f"{epochs[c]}:0" for c in channels)
        seen: dict[str, list[int]] = {c: [] for c in channels}
        polls, deadline = 0, time.monotonic() + 60  # a hang guard
        while polls < 40 and time.monotonic() < deadline:
            query = [("channel", c) for c in channels] + [("since", since), ("wait", "0")]
            response = await client.get(hardened.url + "/poll", params=query, headers=bearer)
            if response.status_code == 429:  # the poll rate: 3 at once, then 1 per second
                await asyncio.sleep(0.2)
                continue
            polls += 1
            assert response.status_code == 200, response.text
            assert len(response.content) <= 65536 + 4096  # the frames, plus the envelope
            reply = response.json()
            for frame in reply["frames"]:
                if frame["type"] == "message":
                    seen[frame["channel"]].append(frame["data"]["i"])
            since = reply["since"]
            if all(len(v) == 40 for v in seen.values()):
                break
    assert seen == {c: list(range(40)) for c in channels}


async def test_frame_rate_hits_stop_counting_once_the_connection_closed(hardened):
    ws = await RawWebSocket.connect(hardened.port, headers="X-Forwarded-For: 198.51.100.30\r\n")
    before = limit_hits(hardened, "frame_rate")
    for i in range(60):  # written at once: they arrive together, after the close is due
        ws.send_frame(PING, str(i).encode())  # control frames count against the rate too
    await ws.writer.drain()
    code, _ = await ws.read_until_close()
    assert code == 4029
    await ws.close()
    await asyncio.sleep(0.2)
    assert limit_hits(hardened, "frame_rate") == before + 1
    other = await open_ws(hardened.ws_url)  # the gateway serves on
    await other.close()
