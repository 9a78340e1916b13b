"""The Python SDK: states, reconnect with backoff, resume, silent servers, terminal codes."""

from __future__ import annotations

import asyncio
import signal

import msgspec
import pytest

from gateway.client import Client, ConnectionState, HandshakeRejected, Message, Subscribed
from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, wait_until
from tests.tcpproxy import FreezingProxy


async def next_message(client: Client, timeout: float = 15) -> Message:
    async with asyncio.timeout(timeout):
        async for event in client:
            if isinstance(event, Message):
                return event
    raise AssertionError("client closed")


async def test_states_and_resume_after_the_gateway_restarts(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    client = Client(gw.ws_url, ["sdk.test"], backoff_base=0.05, backoff_cap=0.5)
    seen: list[ConnectionState] = []
    assert client.state is ConnectionState.DISCONNECTED
    await client.start()
    seen.append(client.state)
    await client.wait_connected(10)
    seen.append(client.state)
    async with AsyncPublisher(redis_server.url) as publisher:
        async with asyncio.timeout(10):  # messages published from "subscribed" on arrive
            assert isinstance(await anext(aiter(client)), Subscribed)
        await publisher.publish("sdk.test", {"n": 1})
        assert (await next_message(client)).offset == 1
        gw.signal(signal.SIGKILL)
        await wait_until(lambda: client.state is ConnectionState.RECONNECTING, 10)
        seen.append(client.state)
        await publisher.publish("sdk.test", {"n": 2})  # while no gateway runs
        await asyncio.to_thread(gw.restart)
        await client.wait_connected(15)
        seen.append(client.state)
        assert (await next_message(client)).offset == 2  # replayed from history
        await publisher.publish("sdk.test", {"n": 3})
        assert (await next_message(client)).offset == 3
    assert seen == ["connecting", "connected", "reconnecting", "connected"]
    assert client.attempt == 0 and client.connects >= 2 and client.duplicates == 0
    await client.close()
    assert client.state is ConnectionState.DISCONNECTED


async def test_a_silent_server_is_noticed_by_the_heartbeat_timeout(redis_server, gateways):
    gw = await asyncio.to_thread(GatewayProcess.start, gateways, redis_server.url)
    proxy = FreezingProxy(gw.port)
    await proxy.start()
    url = f"ws://127.0.0.1:{proxy.port}/ws"
    client = Client(url, ["quiet.test"], heartbeat_timeout=1.0, backoff_base=0.05)
    await client.start()
    await client.wait_connected(10)
    proxy.freeze_open_connections()  # the connection stays open but carries nothing
    await wait_until(lambda: client.connects >= 2, 15, "a reconnect")
    await client.wait_connected(10)
    assert client.last_close is not None
    await client.close()
    await proxy.close()


async def test_a_wrong_path_raises_instead_of_retrying(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    client = Client(f"ws://127.0.0.1:{gw.port}/nope", backoff_base=0.01, backoff_cap=0.05)
    await client.start()
    with pytest.raises(HandshakeRejected, match="answered HTTP 404") as raised:
        await client.wait_connected(10)
    assert raised.value.status == 404 and client.connects == 1
    with pytest.raises(HandshakeRejected):  # iteration says the same
        await anext(aiter(client))
    assert client.state is ConnectionState.DISCONNECTED


async def test_messages_carry_the_decoded_data_and_the_raw_bytes(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    async with Client(gw.ws_url, ["sdk.data"]) as client:
        async with asyncio.timeout(10):
            assert isinstance(await anext(aiter(client)), Subscribed)
        async with AsyncPublisher(redis_server.url) as publisher:
            await publisher.publish("sdk.data", {"id": 7, "state": "paid", "tags": ["a"]})
        message = await next_message(client)
    assert message.data == {"id": 7, "state": "paid", "tags": ["a"]}
    assert msgspec.json.decode(message.raw) == message.data and isinstance(message.raw, bytes)
    assert "msgspec" not in repr(message) and "'paid'" in repr(message)
