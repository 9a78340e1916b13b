"""The Python SDK authenticates every connection and refreshes short-lived tokens itself."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys

import pytest

from gateway.client import AuthenticationFailed, ChannelRefused, Client, Message, Subscribed
from publisher import AsyncPublisher
from tests.helpers import ROOT


async def test_client_refreshes_its_token_and_outlives_each_one(gateway, keys, redis_url):
    issued = itertools.count(1)

    async def login() -> str:  # a login service handing out 3-second tokens
        next(issued)
        return keys.token(ttl=3)

    async with Client(gateway.ws_url, ["tasks.projA.sdk"], token=login) as client:
        events = aiter(client)
        assert isinstance(await anext(events), Subscribed)
        await asyncio.sleep(4.5)  # past the first token's expiry
        async with AsyncPublisher(redis_url) as publisher:
            await publisher.publish("tasks.projA.sdk", {"n": 1})
        async with asyncio.timeout(10):
            event = await anext(events)
        assert isinstance(event, Message) and event.offset == 1
        assert client.connects == 1  # one connection all along: refreshed, never closed
        assert next(issued) >= 4  # the first token, then refreshes


async def test_a_refused_token_raises_instead_of_reconnecting(gateway, keys):
    token = keys.token(key="another-secret-" + "x" * 32)  # signed with the wrong secret
    client = Client(gateway.ws_url, ["tasks.projA.sdk"], token=token, backoff_base=0.01)
    await client.start()
    with pytest.raises(AuthenticationFailed) as raised:
        async with asyncio.timeout(10):
            await anext(aiter(client))
    assert raised.value.code == 4501 and client.connects == 1


async def test_a_channel_that_needs_a_token_raises_for_an_anonymous_client(gateway):
    async with Client(gateway.ws_url, ["public.news", "tasks.projA.1"]) as client:
        with pytest.raises(ChannelRefused) as raised:
            async with asyncio.timeout(10):
                async for _ in client:
                    pass
    assert (raised.value.channel, raised.value.code) == ("tasks.projA.1", "unauthorized")


def test_relaycast_tail_says_a_refused_token_in_one_line(gateway, keys, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(keys.token(key="another-secret-" + "x" * 32))
    tail = [sys.executable, "-m", "shared.cli", "tail", gateway.ws_url, "tasks.projA.1"]
    result = subprocess.run(
        [*tail, "--token-file", str(token_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "closed the connection with 4501" in result.stderr
