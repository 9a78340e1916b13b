"""A subscriber's own pace (``max_rate``): the session with a clock of the test's own,
then a real gateway on a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from gateway.commands import Limits, SubscribeCommand
from gateway.frames import OutFrame, control, message
from gateway.session import Session
from publisher import AsyncPublisher
from shared.protocol import Publication, Subscribed
from tests.helpers import GatewayProcess, open_ws, recv_json, redis_numsub, subscribe
from tests.test_sse import open_sse


class _Timer:
    def __init__(self, clock: ManualClock, at: float, callback: Callable[[], object]) -> None:
        self.clock, self.at, self.callback = clock, at, callback

    def cancel(self) -> None:
        if self in self.clock.timers:
            self.clock.timers.remove(self)


class ManualClock:
    """Time that moves only when the test says so (no I/O in a session test)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[_Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], object]) -> _Timer:
        timer = _Timer(self, self.now + delay, callback)
        self.timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in [t for t in self.timers if t.at <= self.now]:
            self.timers.remove(timer)
            timer.callback()


def pub(channel: str, offset: int) -> OutFrame:
    return message(channel, Publication(offset, "e", json.dumps({"n": offset}), 0.0), True)


def offsets(session: Session) -> list[int]:
    return [json.loads(f.json)["offset"] for f in session.take()]


def paced(clock: ManualClock, max_rate: float, channel: str = "metrics.cpu") -> Session:
    session = Session(Limits(), clock=clock)
    command = session.receive(
        json.dumps({"type": "subscribe", "channel": channel, "max_rate": max_rate})
    )
    assert command == SubscribeCommand(channel, None, max_rate)
    assert session.start(channel, control(Subscribed(channel=channel, offset=0, epoch="e")), 0, 0)
    assert session.go_live(channel)
    session.take()
    return session


# --- the session, with a clock of the test's own -------------------------------------------


def test_a_paced_subscriber_gets_the_newest_value_once_per_interval():
    clock = ManualClock()
    session = paced(clock, max_rate=2)  # one message per 0.5 s
    session.deliver(pub("metrics.cpu", 1))
    assert offsets(session) == [1]  # the first goes at once
    for n in range(2, 5):
        clock.advance(0.125)
        session.deliver(pub("metrics.cpu", n))
    assert offsets(session) == []  # parked: the interval is not up
    clock.advance(0.125)  # 0.5 s after the first
    assert offsets(session) == [4]  # only the newest of 2..4
    clock.advance(1.0)
    assert offsets(session) == []  # nothing new, nothing sent
    session.deliver(pub("metrics.cpu", 6))
    assert offsets(session) == [6]  # the interval is long past: at once


def test_an_unpaced_subscriber_of_the_same_frames_gets_every_one():
    clock = ManualClock()
    slow = paced(clock, max_rate=1)
    fast = Session(Limits(), clock=clock)
    fast.receive('{"type":"subscribe","channel":"metrics.cpu"}')
    fast.start("metrics.cpu", control(Subscribed(channel="metrics.cpu", offset=0, epoch="e")), 0, 0)
    fast.go_live("metrics.cpu")
    fast.take()
    for n in range(1, 11):
        frame = pub("metrics.cpu", n)
        slow.deliver(frame)
        fast.deliver(frame)
        clock.advance(0.0625)
    assert offsets(fast) == list(range(1, 11))
    assert offsets(slow) == [1]
    clock.advance(1.0)
    assert offsets(slow) == [10]


def test_unsubscribing_forgets_the_parked_value_and_its_timer():
    clock = ManualClock()
    session = paced(clock, max_rate=1)
    session.deliver(pub("metrics.cpu", 1))
    session.deliver(pub("metrics.cpu", 2))
    assert len(clock.timers) == 1
    session.receive('{"type":"unsubscribe","channel":"metrics.cpu"}')
    assert clock.timers == []
    clock.advance(2.0)
    assert [json.loads(f.json)["type"] for f in session.take()] == ["message", "unsubscribed"]


def test_a_closed_connection_leaves_no_timer_behind():
    clock = ManualClock()
    session = paced(clock, max_rate=1)
    session.deliver(pub("metrics.cpu", 1))
    session.deliver(pub("metrics.cpu", 2))
    session.close(1000)
    assert session.leave_all() == ["metrics.cpu"]
    assert clock.timers == []


def test_max_rate_must_be_a_number_above_zero():
    session = Session(Limits(), clock=ManualClock())
    for bad in ("0", "-1", '"fast"', "1e999"):
        frame = json.dumps({"type": "subscribe", "channel": "metrics.cpu"})[:-1]
        frame += f', "max_rate": {bad}}}'
        assert session.receive(frame) is None
        (error,) = [json.loads(f.json) for f in session.take()]
        assert error["code"] == "bad_frame" and "max_rate" in error["message"], error
    assert session.subs == {}


def test_a_session_without_a_clock_refuses_max_rate():
    session = Session(Limits())
    assert session.receive('{"type":"subscribe","channel":"metrics.cpu","max_rate":1}') is None
    (error,) = [json.loads(f.json) for f in session.take()]
    assert error["code"] == "bad_frame"


# --- a real gateway --------------------------------------------------------------------------


async def test_a_paced_subscriber_gets_at_most_its_rate_and_the_last_value(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    paced_ws, full_ws = await open_ws(gateway.ws_url), await open_ws(gateway.ws_url)
    await paced_ws.send(json.dumps({"type": "subscribe", "channel": "metrics.pace", "max_rate": 5}))
    assert (await recv_json(paced_ws))["type"] == "subscribed"
    await subscribe(full_ws, "metrics.pace")
    count = 60
    started = time.monotonic()
    async with AsyncPublisher(redis_server.url) as publisher:
        for n in range(1, count + 1):
            await publisher.publish("metrics.pace", {"n": n})
            await asyncio.sleep(0.02)

    async def collect(ws) -> list[int]:
        got: list[int] = []
        while not got or got[-1] < count:
            frame = await recv_json(ws, timeout=30)
            assert frame["type"] == "message", frame
            got.append(frame["data"]["n"])
        return got

    paced_got, full_got = await asyncio.gather(collect(paced_ws), collect(full_ws))
    elapsed = time.monotonic() - started
    assert full_got == list(range(1, count + 1))  # the other subscriber misses nothing
    assert paced_got == sorted(set(paced_got)) and paced_got[-1] == count
    assert len(paced_got) <= elapsed * 5 + 1, (len(paced_got), elapsed)
    assert len(paced_got) < count // 2
    assert redis_numsub(redis_server, "metrics.pace") == 1  # one broker subscription still
    await asyncio.gather(paced_ws.close(), full_ws.close())


async def test_max_rate_on_an_ordered_channel_is_refused_with_an_error_frame(
    redis_server, gateways
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    ws = await open_ws(gateway.ws_url)
    await ws.send(json.dumps({"type": "subscribe", "channel": "tasks.pace", "max_rate": 5}))
    error = await recv_json(ws)
    assert error["type"] == "error" and error["code"] == "max_rate_unsupported", error
    assert error["channel"] == "tasks.pace"
    await subscribe(ws, "tasks.pace")  # the connection stays, and may subscribe plainly
    await ws.close()


async def test_sse_paces_every_channel_of_the_request_with_max_rate(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    assert gateway.get("/sse?channel=metrics.s&max_rate=fast")[0] == 400
    assert gateway.get("/sse?channel=metrics.s&max_rate=0")[0] == 400
    async with (
        open_sse(gateway, "metrics.s", "tasks.s", max_rate="2") as stream,
        AsyncPublisher(redis_server.url) as publisher,
    ):
        assert (await stream.next()).event == "hello"
        first = [(await stream.frame())[0] for _ in range(2)]
        assert {f["type"] for f in first} == {"subscribed", "error"}
        (error,) = [f for f in first if f["type"] == "error"]
        assert (error["code"], error["channel"]) == ("max_rate_unsupported", "tasks.s")
        for n in range(1, 21):
            await publisher.publish("metrics.s", {"n": n})
        got: list[int] = []
        while not got or got[-1] < 20:
            frame, _ = await stream.frame(timeout=30)
            assert frame["type"] == "message", frame
            got.append(frame["data"]["n"])
        assert len(got) < 20 and got == sorted(got)
