"""The Session state machine, fed and drained with no I/O at all."""

from __future__ import annotations

import json

from gateway.frames import OutFrame, control, message
from gateway.session import Limits, Session, SubscribeCommand, UnsubscribeCommand
from shared.broker.base import Publication
from shared.protocol import CloseCode, Subscribed


def frames(session: Session) -> list[dict]:
    return [json.loads(f.json) for f in session.take()]


def pub(channel: str, offset: int, latest: bool = False) -> OutFrame:
    return message(channel, Publication(offset, "e", json.dumps({"n": offset}), 0.0), latest)


def live(session: Session, channel: str, offset: int = 0) -> None:
    """Subscribe ``channel`` and finish it as the hub would, at ``offset``."""
    assert isinstance(
        session.receive(json.dumps({"type": "subscribe", "channel": channel})), SubscribeCommand
    )
    session.activate(channel, Subscribed(channel=channel, offset=offset, epoch="e"), [], offset)
    session.take()


def test_ping_is_answered_with_pong_carrying_its_id():
    session = Session(Limits())
    assert session.receive('{"type":"ping","id":9}') is None
    assert frames(session) == [{"type": "pong", "id": 9}]


def test_subscribe_returns_a_command_and_unsubscribe_confirms():
    session = Session(Limits())
    command = session.receive('{"type":"subscribe","channel":"a"}')
    assert command == SubscribeCommand("a", None)
    session.activate("a", Subscribed(channel="a", offset=0, epoch="e"), [], 0)
    assert session.receive('{"type":"unsubscribe","channel":"a"}') == UnsubscribeCommand("a")
    assert [f["type"] for f in frames(session)] == ["subscribed", "unsubscribed"]


def test_live_frames_held_during_replay_follow_it_without_duplicates():
    session = Session(Limits())
    session.receive('{"type":"subscribe","channel":"a","since":{"offset":2,"epoch":"e"}}')
    session.deliver(pub("a", 4))  # arrives live while history is read
    session.deliver(pub("a", 5))
    replay = [pub("a", 3), pub("a", 4)]
    session.activate("a", Subscribed(channel="a", offset=2, epoch="e", recovered=True), replay, 4)
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
    assert session.take() == []  # queued frames are dropped, the client resumes
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


def test_a_closed_session_ignores_input():
    session = Session(Limits())
    session.close(1012, "bye")
    assert session.receive('{"type":"ping"}') is None
    assert session.take() == []
