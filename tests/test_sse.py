"""``GET /sse`` against real gateway processes and a real Redis: ids, resume, keepalives, drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from publisher import AsyncPublisher
from shared.settings import Settings
from tests.helpers import GatewayProcess, redis_numsub, wait_until

SHORT_HISTORY = json.dumps([{"pattern": "short.*", "history_size": 3}])


@dataclass
class Event:
    event: str = "message"
    id: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def frame(self) -> dict[str, Any]:
        return json.loads(self.data)  # type: ignore[no-any-return]


class Stream:
    """An open ``/sse`` response, read event by event (comments are kept on the next event)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, timeout: float = 10.0) -> Event:
        event = Event()
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if not line:
                    if event.data or event.id is not None or event.event != "message":
                        event.comments, self.comments = self.comments, []
                        return event
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if not name:
                    self.comments.append(value)
                elif name == "data":
                    event.data = f"{event.data}\n{value}" if event.data else value
                elif name in ("id", "event"):
                    setattr(event, name, value)
        raise EOFError("stream ended")

    async def frame(self, timeout: float = 10.0) -> tuple[dict[str, Any], Event]:
        """The next protocol frame that is not a ping, and its event."""
        while True:
            event = await self.next(timeout)
            if event.event == "message" and event.frame["type"] != "ping":
                return event.frame, event


@contextlib.asynccontextmanager
async def open_sse(
    gateway: GatewayProcess, *channels: str, headers: dict[str, str] | None = None, **params: str
) -> AsyncIterator[Stream]:
    query: list[tuple[str, str]] = [("channel", c) for c in channels] + list(params.items())
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client,
        client.stream("GET", gateway.url + "/sse", params=query, headers=headers) as response,
    ):
        yield Stream(response)


async def test_every_event_has_an_id_with_every_channels_position(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    async with (
        open_sse(gw, "tasks.a", "tasks.b") as stream,
        AsyncPublisher(redis_server.url) as pub,
    ):
        headers = stream.response.headers
        assert headers["content-type"].startswith("text/event-stream")
        assert headers["cache-control"].startswith("no-cache")
        assert headers["x-accel-buffering"] == "no"
        hello = await stream.next()
        assert hello.event == "hello"
        assert json.loads(hello.data)["gateway"] == json.loads(gw.get("/gateway")[1])["gateway"]
        subs = {}
        for _ in range(2):
            frame, event = await stream.frame()
            assert frame["type"] == "subscribed" and event.id is not None
            subs[frame["channel"]] = frame
        a = await pub.publish("tasks.a", {"n": 1})
        b = await pub.publish("tasks.b", {"n": 1})
        frame, event = await stream.frame()
        assert (frame["channel"], frame["offset"]) == ("tasks.a", 1)
        assert event.id == f"{a.epoch}:1,{b.epoch}:0"
        frame, event = await stream.frame()
        assert (frame["channel"], frame["data"]) == ("tasks.b", {"n": 1})
        assert event.id == f"{a.epoch}:1,{b.epoch}:1"
        assert subs["tasks.a"]["epoch"] == a.epoch


async def collect(
    stream: Stream, messages: int, subscribed: int = 0
) -> tuple[dict[str, dict[str, Any]], list[tuple[str, int]], str]:
    """Read until ``subscribed`` subscribed frames and ``messages`` messages have come:
    (subscribed frames by channel, (channel, n) of each message, the last event id)."""
    subs: dict[str, dict[str, Any]] = {}
    got: list[tuple[str, int]] = []
    last_id = ""
    while len(subs) < subscribed or len(got) < messages:
        frame, event = await stream.frame()
        if frame["type"] == "subscribed":
            subs[frame["channel"]] = frame
        else:
            assert frame["type"] == "message", frame
            got.append((frame["channel"], frame["data"]["n"]))
        assert event.id is not None
        last_id = event.id
    return subs, got, last_id


async def test_last_event_id_resumes_every_channel_on_another_gateway(redis_server, gateways):
    a = GatewayProcess.start(gateways, redis_server.url)
    b = GatewayProcess.start(gateways, redis_server.url)
    async with AsyncPublisher(redis_server.url) as pub:
        async with open_sse(a, "tasks.x", "tasks.y") as stream:
            await collect(stream, 0, subscribed=2)
            await pub.publish("tasks.x", {"n": 1})
            await pub.publish("tasks.y", {"n": 1})
            _, got, last_id = await collect(stream, 2)
            assert got == [("tasks.x", 1), ("tasks.y", 1)]
        for n in (2, 3):
            await pub.publish("tasks.x", {"n": n})
        await pub.publish("tasks.y", {"n": 2})

        async with open_sse(b, "tasks.x", "tasks.y", headers={"last-event-id": last_id}) as stream:
            resumed, got, _ = await collect(stream, 3, subscribed=2)
            await pub.publish("tasks.y", {"n": 3})
            _, live, _ = await collect(stream, 1)
    assert resumed["tasks.x"]["recovered"] and resumed["tasks.x"]["replayed"] == 2
    assert resumed["tasks.y"]["recovered"] and resumed["tasks.y"]["replayed"] == 1
    assert got == [("tasks.x", 2), ("tasks.x", 3), ("tasks.y", 2)]
    assert live == [("tasks.y", 3)]


async def test_since_resumes_a_first_request_and_says_when_history_is_gone(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url, namespaces=SHORT_HISTORY)
    settings = Settings.load({"redis_url": redis_server.url, "namespaces": SHORT_HISTORY})
    async with AsyncPublisher(settings=settings) as pub:
        first = await pub.publish("tasks.keep", {"n": 1})
        for n in (2, 3):
            await pub.publish("tasks.keep", {"n": n})
        for n in range(1, 9):  # short.* keeps 3: offsets 6..8 remain
            gone = await pub.publish("short.gone", {"n": n})
    since = f"{first.epoch}:1,{gone.epoch}:1"
    async with open_sse(gw, "tasks.keep", "short.gone", since=since) as stream:
        subs, got, last_id = await collect(stream, 2, subscribed=2)
    assert subs["tasks.keep"]["recovered"] is True
    assert got == [("tasks.keep", 2), ("tasks.keep", 3)]
    assert subs["short.gone"]["recovered"] is False
    assert subs["short.gone"]["offset"] == gone.offset
    assert last_id == f"{first.epoch}:3,{gone.epoch}:{gone.offset}"


async def test_quiet_stream_gets_comment_keepalives_and_pings(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url, sse_keepalive=0.3, heartbeat_interval=1.0)
    async with open_sse(gw, "tasks.quiet") as stream:
        pings, comments = 0, 0
        async with asyncio.timeout(10):
            while pings < 2 or comments < 2:
                event = await stream.next()
                comments += event.comments.count("keepalive")
                pings += event.event == "message" and event.frame["type"] == "ping"
        # Pings are written, so a reading client is alive: it outlives the heartbeat timeout.
        assert gw.metric("relaycast_disconnects") == 0


async def test_bad_requests_are_refused_with_a_reason(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    for query, reason in [
        ("", "at least one channel"),
        ("?channel=a&channel=a", "named twice"),
        ("?channel=a&channel=b&since=ff:1", "1 entries for 2 channels"),
        ("?channel=a&since=ff:x", "not <epoch>:<offset>"),
    ]:
        status, body = gw.get("/sse" + query)
        assert status == 400 and reason in body, (query, body)
    # A bad channel name is a protocol error, as on a WebSocket: the stream stays open.
    async with open_sse(gw, "bad name!", "tasks.ok") as stream:
        frame, _ = await stream.frame()
        assert frame["type"] == "error" and frame["code"] == "invalid_channel"
        frame, _ = await stream.frame()
        assert frame["type"] == "subscribed" and frame["channel"] == "tasks.ok"


async def test_stream_holds_one_broker_subscription_and_releases_it(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    async with open_sse(gw, "tasks.ref") as s1, open_sse(gw, "tasks.ref") as s2:
        await s1.frame()
        await s2.frame()
        assert redis_numsub(redis_server, "tasks.ref") == 1
        assert gw.metric('relaycast_connections{transport="sse"}') == 2
    await wait_until(lambda: redis_numsub(redis_server, "tasks.ref") == 0, 10, "unsubscribe")
    await wait_until(
        lambda: gw.metric('relaycast_connections{transport="sse"}') == 0, 10, "gauge back to 0"
    )


async def test_draining_gateway_ends_the_stream_with_close_1012(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url, drain_seconds=0.2)
    async with open_sse(gw, "tasks.drain") as stream:
        await stream.frame()
        gw.signal(signal.SIGTERM)
        while (event := await stream.next()).event != "close":
            pass
    assert json.loads(event.data)["code"] == 1012
    assert gw.wait_exit(15) == 0


async def test_a_stream_nobody_reads_is_dropped_and_freed(redis_server, gateways):
    # Its outbox fills (close 4001) or a write stalls past the heartbeat timeout, whichever
    # comes first; either way the gateway lets go of it.
    gw = GatewayProcess.start(
        gateways, redis_server.url, outbox_messages=64, heartbeat_timeout=2, heartbeat_interval=1
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
    writer.write(b"GET /sse?channel=tasks.stuck HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await reader.readuntil(b'"subscribed"')  # then never read again
    sse = 'relaycast_connections{transport="sse"}'
    assert gw.metric(sse) == 1
    payload = {"blob": "x" * 20_000}
    async with AsyncPublisher(redis_server.url) as pub:
        for _ in range(1500):  # 30 MB: more than socket buffers and the outbox hold
            await pub.publish("tasks.stuck", payload)
    await wait_until(lambda: gw.metric(sse) == 0, 20, "the stuck stream to be dropped")
    assert redis_numsub(redis_server, "tasks.stuck") == 0
    writer.close()
