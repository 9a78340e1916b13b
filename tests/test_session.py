"""The Session state machine, fed and drained with no I/O at all."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gateway.access import Grant, TokenError
from gateway.commands import Limits, SubscribeCommand, UnsubscribeCommand
from gateway.frames import OutFrame, control, message
from gateway.heartbeat import beat
from gateway.session import InvalidState, Session, State
from shared.protocol import CloseCode, ErrorCode, Publication, Subscribed


def frames(session: Session) -> list[dict]:
    return [json.loads(f.json) for f in session.take()]


def pub(channel: str, offset: int, latest: bool = False) -> OutFrame:
    return message(channel, Publication(offset, "e", json.dumps({"n": offset}), 0.0), latest)


def live(session: Session, channel: str, offset: int = 0) -> None:
    """Subscribe ``channel`` and finish it as the hub would, at ``offset``."""
    assert isinstance(
        session.receive(json.dumps({"type": "subscribe", "channel": channel})), SubscribeCommand
    )
    subscribed = control(Subscribed(channel=channel, offset=offset, epoch="e"))
    assert session.start(channel, subscribed, offset, offset)
    assert session.go_live(channel)
    session.take()


def test_ping_is_answered_with_pong_carrying_its_id():
    session = Session(Limits())
    assert session.receive('{"type":"ping","id":9}') is None
    assert frames(session) == [{"type": "pong", "id": 9}]


def test_subscribe_returns_a_command_and_unsubscribe_confirms():
    session = Session(Limits())
    command = session.receive('{"type":"subscribe","channel":"a"}')
    assert command == SubscribeCommand("a", None)
    session.start("a", control(Subscribed(channel="a", offset=0, epoch="e")), 0, 0)
    assert session.go_live("a")
    assert session.receive('{"type":"unsubscribe","channel":"a"}') == UnsubscribeCommand("a")
    assert [f["type"] for f in frames(session)] == ["subscribed", "unsubscribed"]


def test_live_frames_held_during_replay_follow_it_without_duplicates():
    session = Session(Limits())
    session.receive('{"type":"subscribe","channel":"a","since":{"offset":2,"epoch":"e"}}')
    session.deliver(pub("a", 4))  # arrives live while history is read
    session.deliver(pub("a", 5))
    session.start("a", control(Subscribed(channel="a", offset=2, epoch="e", recovered=True)), 2, 3)
    assert not session.go_live("a")  # held frames start at 4: offset 3 is missing
    session.feed("a", [pub("a", 3), pub("a", 4)])
    assert session.go_live("a")
    got = frames(session)
    assert got[0]["type"] == "subscribed"
    assert [f["offset"] for f in got[1:]] == [3, 4, 5]


def test_frames_for_other_channels_are_ignored():
    session = Session(Limits())
    live(session, "a")
    session.deliver(pub("b", 1))
    assert session.take() == []


def test_a_full_outbox_closes_an_ordered_channel_with_4001():
    woke = []
    session = Session(Limits(outbox_messages=3), on_ready=lambda: woke.append(1))
    live(session, "a")
    for n in range(1, 5):
        session.deliver(pub("a", n))
    assert session.close_code == CloseCode.SLOW_CONSUMER
    assert len(session.outbox) == 0  # queued frames are dropped, the client resumes
    assert woke


def test_a_full_outbox_conflates_a_latest_value_channel_to_its_newest_value():
    session = Session(Limits(outbox_messages=3))
    live(session, "metrics.h")
    for n in range(1, 11):
        session.deliver(pub("metrics.h", n, latest=True))
    assert session.close_code is None
    offsets = [f["offset"] for f in frames(session)]
    assert offsets[-1] == 10
    assert len(offsets) <= 3


def test_the_byte_bound_applies_too():
    session = Session(Limits(outbox_bytes=200))
    live(session, "a")
    for n in range(1, 10):
        session.deliver(pub("a", n))
    assert session.close_code == CloseCode.SLOW_CONSUMER


def test_restart_tells_the_client_and_accepts_the_new_stream():
    session = Session(Limits())
    live(session, "a", offset=7)
    notice = control(Subscribed(channel="a", offset=0, epoch="e2", recovered=False))
    session.restart("a", notice, 0)
    session.deliver(pub("a", 1))
    got = frames(session)
    assert got[0] == {
        "type": "subscribed",
        "channel": "a",
        "offset": 0,
        "epoch": "e2",
        "recovered": False,
    }
    assert got[1]["offset"] == 1


def test_a_closed_session_refuses_to_be_fed_or_drained():
    session = Session(Limits())
    session.close(CloseCode.SERVICE_RESTART, "bye")
    assert session.state is State.CLOSED
    with pytest.raises(InvalidState, match="is closed"):
        session.receive('{"type":"ping"}')
    with pytest.raises(InvalidState):
        session.take()
    with pytest.raises(InvalidState):
        session.authenticate("token")
    with pytest.raises(InvalidState):
        session.check_credentials(0.0, 0.0)
    with pytest.raises(InvalidState):
        session.spend(0.0)


def test_closing_twice_keeps_the_first_code_and_delivery_after_close_is_dropped():
    session = Session(Limits())
    live(session, "a")
    session.close(CloseCode.SLOW_CONSUMER, "first")
    session.close(CloseCode.SERVICE_RESTART, "second")
    assert (session.close_code, session.close_reason) == (CloseCode.SLOW_CONSUMER, "first")
    session.deliver(pub("a", 1))  # the fan-out reaches it until the hub detaches it
    assert len(session.outbox) == 0


def test_live_frames_piling_up_during_catch_up_are_left_to_history():
    session = Session(Limits(outbox_messages=20))
    session.receive('{"type":"subscribe","channel":"a","since":{"offset":0,"epoch":"e"}}')
    session.start("a", control(Subscribed(channel="a", offset=0, epoch="e", recovered=True)), 0, 0)
    for n in range(1, 31):  # more than the hold keeps: it forgets 1..20, keeps 21..30
        session.deliver(pub("a", n))
    assert session.close_code is None
    session.take()
    got = []
    for first in (1, 11):  # the replay, in batches the outbox has room for
        assert not session.go_live("a")
        assert session.outbox.room() == 10
        session.feed("a", [pub("a", n) for n in range(first, first + 10)])
        got += [f["offset"] for f in frames(session)]
    assert session.go_live("a")
    got += [f["offset"] for f in frames(session)]
    assert got == list(range(1, 31))


def test_room_leaves_half_the_outbox_for_live_traffic_and_drain_wakes_waiters():
    session = Session(Limits(outbox_messages=10))
    live(session, "a")
    assert session.outbox.room() == 5
    for n in range(1, 6):
        session.deliver(pub("a", n))
    assert session.outbox.room() == 0
    woke = []
    session.outbox.when_drained(lambda: woke.append(True))
    session.take()
    assert woke == [True]
    assert session.outbox.room() == 5


def test_a_resume_does_not_go_live_before_reaching_the_head_it_started_from():
    session = Session(Limits())
    session.receive('{"type":"subscribe","channel":"a","since":{"offset":2,"epoch":"e"}}')
    subscribed = control(Subscribed(channel="a", offset=2, epoch="e", recovered=True))
    session.start("a", subscribed, 2, 6)  # the channel stood at 6; nothing live yet
    session.feed("a", [pub("a", 3)])
    assert not session.go_live("a")  # 4..6 are still to come from history
    session.feed("a", [pub("a", n) for n in (4, 5, 6)])
    assert session.go_live("a")
    session.deliver(pub("a", 7))
    assert [f["offset"] for f in frames(session)[1:]] == [3, 4, 5, 6, 7]


def test_a_refilled_backlog_is_taken_when_it_fits_and_held_when_it_does_not():
    session = Session(Limits(outbox_messages=8))
    live(session, "a")
    assert not session.hold("a", [pub("a", n) for n in (1, 2, 3)])  # fits: delivered
    assert [f["offset"] for f in frames(session)] == [1, 2, 3]
    backlog = [pub("a", n) for n in range(4, 14)]  # ten frames, room for eight
    assert session.hold("a", backlog)  # held: the caller starts a paced catch-up
    assert session.close_code is None and session.take() == []
    got = []
    while not session.go_live("a"):  # 4..13 come from history, as the client reads
        session.feed("a", backlog)
        got += [f["offset"] for f in frames(session)]
    assert got == list(range(4, 14))


class Recorder:
    """A metrics sink that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def error_sent(self, code: ErrorCode) -> None:
        self.calls.append(("error_sent", code))

    def limit_hit(self, limit: str) -> None:
        self.calls.append(("limit_hit", limit))

    def auth_refused(self, reason: str) -> None:
        self.calls.append(("auth_refused", reason))

    def slow_disconnect(self) -> None:
        self.calls.append(("slow_disconnect", None))

    def conflated(self, frames: int) -> None:
        self.calls.append(("conflated", frames))


class OpenAccess:
    """An access policy without keys: the token is the user's name, every channel is open
    to a token, ``expires`` is 100."""

    auth_timeout = 10.0

    def verify(self, token: str) -> Grant:
        if not token:
            raise TokenError("malformed", "token is not a valid JWT")
        return Grant(token, ("*",), 100.0)

    def check(self, grant: Grant | None, channel: str) -> ErrorCode | None:
        return (
            None if grant is not None or channel.startswith("public.") else ErrorCode.UNAUTHORIZED
        )

    def expired(self, grant: Grant, wall: float) -> bool:
        return wall > grant.expires


def test_limits_and_drops_are_reported_to_the_metrics_sink_it_is_given():
    metrics = Recorder()
    session = Session(Limits(outbox_messages=3, max_subscriptions=1), metrics=metrics)
    session.receive("not json")
    live(session, "metrics.h")
    session.receive('{"type":"subscribe","channel":"b"}')
    for n in range(1, 6):
        session.deliver(pub("metrics.h", n, latest=True))
    assert ("error_sent", ErrorCode.BAD_FRAME) in metrics.calls
    assert ("limit_hit", "subscriptions") in metrics.calls
    assert any(name == "conflated" for name, _ in metrics.calls)
    assert session.close_code is None


def test_a_slow_consumer_is_reported_once():
    metrics = Recorder()
    session = Session(Limits(outbox_messages=2), metrics=metrics)
    live(session, "a")
    for n in range(1, 6):
        session.deliver(pub("a", n))
    assert metrics.calls == [("slow_disconnect", None)]


def test_a_token_moves_an_anonymous_session_to_authenticated_and_a_bad_one_closes_it():
    session = Session(Limits(), guard=OpenAccess())
    assert session.state is State.ANONYMOUS
    session.authenticate("ann")
    assert session.state is State.AUTHENTICATED and session.grant is not None
    assert frames(session) == [{"type": "authenticated", "user": "ann", "expires": 100}]
    session.authenticate("ann")  # a refresh stays authenticated
    assert session.state is State.AUTHENTICATED
    session.authenticate("bob")  # a refresh must name the same user
    assert session.state is State.CLOSED
    assert session.close_code == CloseCode.UNAUTHORIZED

    refused = Session(Limits(), guard=OpenAccess())
    refused.authenticate("")
    assert (refused.state, refused.close_code) == (State.CLOSED, CloseCode.UNAUTHORIZED)


def test_the_heartbeat_pings_then_closes_the_silent_and_the_expired():
    metrics = Recorder()
    talking = Session(Limits(), guard=OpenAccess(), metrics=metrics)
    talking.authenticate("ann")
    talking.take()
    silent = Session(Limits())
    beat([talking, silent], now=5.0, wall=50.0, timeout=10.0)
    assert frames(talking) == [{"type": "ping"}] and frames(silent) == [{"type": "ping"}]
    talking.last_seen = 12.0
    beat([talking, silent], now=12.0, wall=50.0, timeout=10.0)
    assert silent.close_code == CloseCode.HEARTBEAT_TIMEOUT
    assert talking.close_code is None
    beat([talking, silent], now=13.0, wall=101.0, timeout=10.0, judge=False)
    assert talking.close_code == CloseCode.TOKEN_EXPIRED
    assert ("auth_refused", "expired") in metrics.calls


def test_the_session_imports_no_web_framework_metrics_library_or_jwt():
    code = (
        "import sys, gateway.session; print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'starlette', 'prometheus_client', 'jwt', 'cryptography', 'asyncio', 'redis'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
