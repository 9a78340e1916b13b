"""The Python SDK authenticates every connection and refreshes short-lived tokens itself."""

from __future__ import annotations

import asyncio
import itertools

from gateway.client import Client, Message, Subscribed
from publisher import AsyncPublisher


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
