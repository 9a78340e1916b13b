"""The Python SDK's typed events, state changes, reconnect limit and refusals."""

from __future__ import annotations

import asyncio
import json
import signal

import msgspec
import pytest
from websockets.asyncio.server import ServerConnection, serve

from gateway.client import (
    BUILT_IN_EVENTS,
    Client,
    Connected,
    Disconnected,
    HandshakeRejected,
    InvalidChannel,
    InvalidURL,
    Message,
    Reconnecting,
    ReconnectLimitReached,
    StateChange,
    Subscribed,
    event_type,
    register_event,
)
from publisher import AsyncPublisher
from publisher.tasks import Tasks
from shared.localredis import free_port
from shared.state.alerts import Alert, AlertEvent, AlertsState
from shared.state.tasks import TaskEvent, TaskState, TaskStatus
from tests.helpers import GatewayProcess, wait_until


async def messages(client: Client, count: int, timeout: float = 15) -> list[Message]:
    got: list[Message] = []
    async with asyncio.timeout(timeout):
        async for event in client:
            if isinstance(event, Message):
                got.append(event)
                if len(got) == count:
                    return got
    raise AssertionError(f"client closed after {got}")


async def test_task_events_and_states_decode_into_their_structs(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    channels = ["tasks.sdk", "tasks.sdk.t1@state", "own.channel"]
    async with Client(gw.ws_url, channels) as client:
        await wait_until(lambda: len(client.positions) == 3, 10, "three subscriptions")
        async with Tasks(redis_server.url) as tasks:
            task = await tasks.create("sdk", "Export", id="t1", total_steps=2)
            await task.start()
            await task.progress(step=1)
            await task.complete({"rows": 3})
        async with AsyncPublisher(redis_server.url) as publisher:
            await publisher.publish("own.channel", {"mine": True})
        got: list[Message] = []

        def done() -> bool:
            final = [m for m in got if m.channel == "tasks.sdk.t1@state" and m.offset == 4]
            return len([m for m in got if m.channel != "tasks.sdk.t1@state"]) == 5 and any(final)

        while not done():  # the state channel may skip states (latest-value), not the last
            got += await messages(client, 1)
    events = [m.event for m in got if m.channel == "tasks.sdk"]
    assert all(isinstance(e, TaskEvent) for e in events)
    assert [e.type for e in events if isinstance(e, TaskEvent)] == [
        "task.queued",
        "task.started",
        "task.progress",
        "task.completed",
    ]
    last = events[-1]
    assert isinstance(last, TaskEvent) and last.task is not None
    assert last.task.status is TaskStatus.COMPLETED and last.task.result == {"rows": 3}
    states = [m.event for m in got if m.channel == "tasks.sdk.t1@state"]
    assert states and all(isinstance(s, TaskState) for s in states)
    own = next(m for m in got if m.channel == "own.channel")
    assert own.event is None and own.data == {"mine": True}
    assert own.decode(dict[str, bool]) == {"mine": True}


async def test_state_changes_are_reported_across_a_gateway_restart(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    changes: list[StateChange] = []
    client = Client(
        gw.ws_url, ["sdk.states"], backoff_base=0.05, backoff_cap=0.3, on_state=changes.append
    )
    await client.start()
    await client.wait_connected(10)
    gw.signal(signal.SIGKILL)
    await wait_until(lambda: any(isinstance(c, Reconnecting) for c in changes), 10, "a retry")
    await asyncio.to_thread(gw.restart)
    await client.wait_connected(15)
    await client.close()
    assert changes[0] == Connected(gw.ws_url)
    assert changes[1] == Disconnected(url=gw.ws_url, code=1006, reason="", will_reconnect=True)
    retries = [c for c in changes if isinstance(c, Reconnecting)]
    assert [r.attempt for r in retries] == list(range(1, len(retries) + 1))
    assert all(0 <= r.delay <= 0.3 for r in retries)
    assert changes[2 : 2 + len(retries)] == retries  # all in a row, between the two
    assert changes[2 + len(retries)] == Connected(gw.ws_url)
    assert changes[-1] == Disconnected(url=gw.ws_url, code=1000, reason="", will_reconnect=False)


async def test_the_client_gives_up_after_max_reconnects():
    url = f"ws://127.0.0.1:{free_port()}/ws"  # nothing listens there
    changes: list[StateChange] = []
    client = Client(
        url, max_reconnects=2, backoff_base=0.01, backoff_cap=0.02, on_state=changes.append
    )
    await client.start()
    with pytest.raises(ReconnectLimitReached, match="max_reconnects=2") as raised:
        await client.wait_connected(10)
    assert "cannot connect" in raised.value.last
    assert client.connects == 3  # the first attempt and two more
    assert [c.attempt for c in changes if isinstance(c, Reconnecting)] == [1, 2]
    with pytest.raises(ReconnectLimitReached):
        await anext(aiter(client))


async def test_with_reconnecting_off_a_lost_connection_ends_the_client(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    changes: list[StateChange] = []
    client = Client(gw.ws_url, ["sdk.once"], max_reconnects=0, on_state=changes.append)
    await client.start()
    async with asyncio.timeout(10):
        assert isinstance(await client.receive(), Subscribed)
    gw.signal(signal.SIGKILL)
    with pytest.raises(ReconnectLimitReached, match="max_reconnects=0"):
        async with asyncio.timeout(10):
            await client.receive()
    assert changes[-1] == Disconnected(url=gw.ws_url, code=1006, reason="", will_reconnect=False)
    assert client.connects == 1


def test_mistakes_in_arguments_raise_at_once():
    with pytest.raises(InvalidURL, match=r"e\.g\. ws://127\.0\.0\.1:8000/ws"):
        Client("http://127.0.0.1:8000/ws")
    with pytest.raises(InvalidURL, match="no host"):
        Client("ws:///ws")
    with pytest.raises(InvalidChannel, match="invalid channel"):
        Client("ws://127.0.0.1:8000/ws", ["no spaces!"])
    with pytest.raises(ValueError, match="max_rate"):
        Client("ws://127.0.0.1:8000/ws", ["metrics.fleet"], max_rate=0)


async def test_an_http_status_that_will_not_change_raises():
    async def forbid(connection: ServerConnection, request: object) -> object:
        return connection.respond(403, "no\n")

    async with serve(lambda ws: ws.wait_closed(), "127.0.0.1", 0, process_request=forbid) as srv:
        port = srv.sockets[0].getsockname()[1]
        client = Client(f"ws://127.0.0.1:{port}/ws")
        await client.start()
        with pytest.raises(HandshakeRejected, match="HTTP 403"):
            await client.wait_connected(10)


async def test_max_rate_travels_in_the_subscribe_frame():
    frames: list[dict[str, object]] = []

    async def record(ws: ServerConnection) -> None:
        async for raw in ws:
            frames.append(json.loads(raw))

    async with serve(record, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        async with Client(f"ws://127.0.0.1:{port}/ws", ["metrics.fleet"], max_rate=2) as client:
            await client.wait_connected(10)
            await client.subscribe("tasks.x.1@state", max_rate=0.5)
            await client.subscribe("plain.channel")
            await wait_until(lambda: len(frames) == 3, 10, "three subscribes")
    assert frames == [
        {"type": "subscribe", "channel": "metrics.fleet", "max_rate": 2.0},
        {"type": "subscribe", "channel": "tasks.x.1@state", "max_rate": 0.5},
        {"type": "subscribe", "channel": "plain.channel"},
    ]


def test_each_built_in_channel_decodes_into_its_struct_and_registrations_come_first():
    assert event_type("tasks.billing") is TaskEvent
    assert event_type("tasks.billing.export-7") is TaskEvent
    assert event_type("tasks.billing.export-7@state") is TaskState
    assert event_type("alerts") is AlertEvent and event_type("alerts@state") is AlertsState
    assert event_type("orders.eu") is None
    alert = AlertEvent(
        type="alert.raised",
        time=1.0,
        alert=Alert(
            id="a",
            rule="cpu_high",
            host="h",
            severity="warning",
            message="hot",
            metric="cpu.percent",
            op=">",
            threshold=90.0,
            clear=80.0,
            value=95.0,
            raised_at=1.0,
        ),
    )
    message = Message("alerts", 1, msgspec.json.encode(alert))
    assert message.event == alert and message.data["alert"]["rule"] == "cpu_high"

    class Order(msgspec.Struct):
        id: int

    register_event("orders.*", Order)
    try:
        assert Message("orders.eu", 1, b'{"id": 7}').event == Order(7)
        with pytest.raises(msgspec.ValidationError):
            _ = Message("orders.eu", 2, b'{"id": "seven"}').event
    finally:
        BUILT_IN_EVENTS.remove(("orders.*", Order))
