"""SyncClient: the Python SDK for scripts and notebooks, without an event loop."""

from __future__ import annotations

import threading

import pytest

from gateway.client import (
    ClientClosed,
    HandshakeRejected,
    InvalidURL,
    Message,
    Subscribed,
    SyncClient,
)
from publisher import Publisher
from tests.helpers import GatewayProcess


def test_a_script_receives_messages_without_an_event_loop(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    with SyncClient(gw.ws_url, ["sync.test"]) as client:
        first = client.next(timeout=10)
        assert isinstance(first, Subscribed) and first.channel == "sync.test"
        with pytest.raises(TimeoutError):
            client.next(timeout=0.2)  # a quiet channel: nothing yet, and nothing lost
        with Publisher(redis_server.url) as publisher:
            for n in range(1, 4):
                publisher.publish("sync.test", {"n": n})
        got = [client.next(timeout=10) for _ in range(3)]
        assert [m.data["n"] for m in got if isinstance(m, Message)] == [1, 2, 3]
        client.subscribe("sync.other")
        assert isinstance(client.next(timeout=10), Subscribed)
    with pytest.raises(ClientClosed):
        client.next(timeout=1)
    assert list(client) == []
    assert not any(t.name == "relaycast-sync-client" for t in threading.enumerate())


def test_iteration_ends_when_another_thread_closes_the_client(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    client = SyncClient(gw.ws_url, ["sync.iter"])
    seen = []
    for event in client:
        seen.append(event)
        threading.Timer(0.1, client.close).start()
    assert len(seen) == 1 and isinstance(seen[0], Subscribed)


def test_mistakes_raise_in_the_calling_thread(redis_server, gateways):
    with pytest.raises(InvalidURL):
        SyncClient("http://127.0.0.1:8000/ws")
    gw = GatewayProcess.start(gateways, redis_server.url)
    with SyncClient(f"ws://127.0.0.1:{gw.port}/nope") as client:
        with pytest.raises(HandshakeRejected, match="404"):
            client.next(timeout=10)
        with pytest.raises(HandshakeRejected):
            client.wait_connected(timeout=1)
